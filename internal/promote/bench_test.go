package promote

import (
	"context"
	"testing"
	"time"
)

// BenchmarkTimeToPR measures `tug promote` from start to an open pull
// request on the real Gitea, against the same promotion as a dry run (clone,
// load, gate, edit, render twice — everything but commit, push and the PR
// API calls), and reports the ratio. Each iteration uses a fresh repository
// so every run opens a new PR.
func BenchmarkTimeToPR(b *testing.B) {
	ctx := context.Background()
	var full, dry time.Duration
	for range b.N {
		b.StopTimer()
		r, _ := fixtureRepo(b, "backend")
		f := adminForge(b, r)
		o := opts(f, "backend")
		o.DryRun = true
		b.StartTimer()
		start := time.Now()
		if _, err := Run(ctx, o); err != nil {
			b.Fatal(err)
		}
		dry += time.Since(start)
		o.DryRun = false
		start = time.Now()
		res, err := Run(ctx, o)
		if err != nil || res.PR == nil {
			b.Fatal(err)
		}
		full += time.Since(start)
	}
	b.ReportMetric(float64(full.Milliseconds())/float64(b.N), "ms-to-PR/op")
	b.ReportMetric(float64(dry.Milliseconds())/float64(b.N), "ms-dry-run/op")
	b.ReportMetric(float64(full)/float64(dry), "ratio")
}
