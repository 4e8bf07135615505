//go:build unix

package diff

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
// (2,000 Helm Applications sharing 3 charts), commits, changes the values
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
	apps := generateHelmRepo(b, dir, services)
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

// generateHelmRepo writes 2×services Applications over three charts and
// returns how many Applications it wrote.
func generateHelmRepo(b *testing.B, root string, services int) int {
	const repoURL = "https://example.com/bench.git"
	write(b, root, "tug.yaml", "repoURL: "+repoURL+"\n")
	charts := []string{"web", "api", "worker"}
	for _, c := range charts {
		write(b, root, "charts/"+c+"/Chart.yaml", "apiVersion: v2\nname: "+c+"\nversion: 0.1.0\n")
		write(b, root, "charts/"+c+"/values.yaml", "image: {repository: ghcr.io/example/"+c+", tag: 0.1.0}\nreplicas: 1\nport: 8080\n")
		write(b, root, "charts/"+c+"/values-dev.yaml", "image: {tag: 0.2.0}\n")
		write(b, root, "charts/"+c+"/values-prod.yaml", "replicas: 3\n")
		write(b, root, "charts/"+c+"/templates/all.yaml", benchTemplate)
	}
	n := 0
	for i := range services {
		name := fmt.Sprintf("svc-%04d", i)
		chart := "charts/" + charts[i%len(charts)]
		var docs []string
		for _, env := range []string{"dev", "prod"} {
			n++
			docs = append(docs, fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s-%s, namespace: argocd}
spec:
  project: default
  source:
    repoURL: %s
    path: %s
    helm: {releaseName: %s, valueFiles: [values-%s.yaml]}
  destination: {server: https://kubernetes.default.svc, namespace: %s-%s}
`, name, env, repoURL, chart, name, env, name, env))
		}
		write(b, root, filepath.Join("apps", name+".yaml"), strings.Join(docs, "---\n"))
	}
	return n
}

const benchTemplate = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  LOG_LEVEL: info
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{name: http, port: 80, targetPort: {{ .Values.port }}}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: app
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          ports: [{name: http, containerPort: {{ .Values.port }}}]
`
