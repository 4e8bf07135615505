//go:build unix

package diff

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/testrepo"
)

// BenchmarkDiffThisRepository is `tug diff HEAD~1 HEAD` on this repository
// (both revisions from git objects, every Application rendered twice).
//
//	go test -run '^$' -bench DiffThisRepository ./internal/diff/
func BenchmarkDiffThisRepository(b *testing.B) {
	ctx := context.Background()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := Run(ctx, Options{Dir: "../..", Base: "HEAD~1", Head: "HEAD"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}

// cpuTime is the CPU this process and its finished children (git) used:
// on a shared machine, wall time says more about the neighbours.
func cpuTime() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// argocd-diff-preview's published figure: 92 Applications in 1 min 40 s
// (a cluster and Argo CD per run), about 1.09 s per Application.
const diffPreviewPerApp = 100.0 / 92

// BenchmarkDiff2000HelmApps generates 1,000 services × 2 environments
// (2,000 Helm Applications sharing 3 charts: testrepo.HelmFleet, which
// the tug validate benchmark uses too), commits, changes the values
// every "web" service shares and its prod tag, commits again, and times
// `tug diff` between the two commits — 4,000 renders — reporting the time
// per Application next to argocd-diff-preview's. It also checks the
// Markdown of that change fits one GitHub comment.
//
//	go test -run '^$' -bench Diff2000HelmApps -benchtime 1x ./internal/diff/
//
// BENCH_APPS overrides the number of services (default 1000).
func BenchmarkDiff2000HelmApps(b *testing.B) {
	services := 1000
	if s := os.Getenv("BENCH_APPS"); s != "" {
		fmt.Sscanf(s, "%d", &services)
	}
	dir := b.TempDir()
	fleet, err := testrepo.HelmFleet(dir, services)
	if err != nil {
		b.Fatal(err)
	}
	apps := len(fleet)
	git(b, dir, "init", "-q", "-b", "main")
	base := commitAll(b, dir, "base")
	write(b, dir, "charts/web/values.yaml", "image: {repository: ghcr.io/example/web, tag: 0.1.0}\nreplicas: 2\nport: 8080\n")
	write(b, dir, "charts/web/values-prod.yaml", "replicas: 3\nimage: {tag: 0.3.0}\n")
	head := commitAll(b, dir, "web: 2 replicas, prod on 0.3.0")
	ctx := context.Background()
	for b.Loop() {
		start, cpu0 := time.Now(), cpuTime()
		res, err := Run(ctx, Options{Dir: dir, Base: base, Head: head})
		if err != nil {
			b.Fatal(err)
		}
		took, cpu := time.Since(start), cpuTime()-cpu0
		if want := (services + 2) / 3 * 2; len(res.Apps) != want {
			b.Fatalf("%d Applications changed, want %d (every web service, dev and prod)", len(res.Apps), want)
		}
		md := Markdown(res, MarkdownOptions{})
		if len(md) > MaxComment {
			b.Fatalf("markdown of the change is %d bytes", len(md))
		}
		perApp := took.Seconds() / float64(apps)
		b.ReportMetric(took.Seconds(), "s/diff")
		b.ReportMetric(perApp*1000, "ms/app")
		b.ReportMetric(diffPreviewPerApp/perApp, "x-faster-per-app")
		b.ReportMetric(cpu.Seconds(), "cpu-s/diff")
		fmt.Fprintf(os.Stderr, "\n%d Helm Applications, 2 revisions: tug diff %v wall, %v CPU (%.2f ms per Application; argocd-diff-preview publishes %.0f ms per Application: %.0fx); markdown %d bytes\n",
			apps, took.Round(time.Millisecond), cpu.Round(time.Millisecond), perApp*1000, diffPreviewPerApp*1000, diffPreviewPerApp/perApp, len(md))
	}
}
