package e2e

// Speed figures for promotion (open, merge, roll out), measured on the lab:
//
//	go test -run '^$' -bench Promote -benchtime 1x ./e2e
//
// Each figure is printed with the alternative measured in the same run.

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPromoteBackend times the two halves of a promotion on the lab:
//
//   - `tug promote backend --from dev --to prod` → pull request open
//     (process wall clock: clone, live health gate, Helm render of prod
//     before/after, push, PR). The alternative is the same command with
//     --dry-run, which does everything but push and open the PR: the ratio
//     is what the forge writes cost.
//   - the reviewer's merge → `tug wait backend-prod --revision <merge>`
//     returns (prod Synced+Healthy at the merge commit). The alternative,
//     measured once, is relying on Argo CD's own poll (no refresh asked;
//     the lab has no forge webhook), as someone watching the UI would.
//
// Every iteration reverts its promotion through a revert PR (untimed), so
// prod is back at its tag afterwards.
func BenchmarkPromoteBackend(b *testing.B) {
	restorePromotionState(b)
	mustTugWait(b, 5*time.Minute, forgeHead(b), "backend-dev", "backend-prod")
	args := []string{"backend", "--from", "dev", "--to", "prod"}

	// promoteOnce opens the PR, merges it and returns the merge commit with
	// the time to the PR; the caller waits for prod and then reverts.
	promoteOnce := func() (merge string, number int64, toPR time.Duration) {
		run := mustPromote(b, args...)
		if !run.res.PRCreated {
			b.Fatalf("tug promote reused PR #%d; the lab was not clean", run.res.PR.Number)
		}
		return approveAndMerge(b, run.res.PR.Number).MergeCommit, run.res.PR.Number, run.took
	}
	revert := func(merge string, number int64) {
		mustTugWait(b, 5*time.Minute, revertByPullRequest(b, merge, number).MergeCommit, "backend-prod")
	}

	var toPR, toHealthy, dry time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dryRun := mustPromote(b, append(args, "--dry-run")...)
		dry += dryRun.took
		merge, number, took := promoteOnce()
		toPR += took
		start := time.Now()
		b.StartTimer()
		mustTugWait(b, 5*time.Minute, merge, "backend-prod")
		b.StopTimer()
		d := time.Since(start)
		toHealthy += d
		b.Logf("tug promote → PR: %.2fs (dry run %.2fs); merge %s → prod Synced+Healthy: %.2fs",
			took.Seconds(), dryRun.took.Seconds(), merge[:12], d.Seconds())
		revert(merge, number)
	}
	n := float64(b.N)
	pr, dr, healthy := toPR.Seconds()/n, dry.Seconds()/n, toHealthy.Seconds()/n
	b.ReportMetric(pr, "s/promote-to-pr")
	b.ReportMetric(dr, "s/dry-run")
	b.ReportMetric(healthy, "s/merge-to-healthy")

	// The alternative, once: nobody asks Argo CD to refresh after the merge.
	// If Argo CD has not noticed the merge by pollLimit the figure is a
	// lower bound, and says so.
	const pollLimit = 5 * time.Minute
	merge, number, _ := promoteOnce()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), pollLimit)
	defer cancel()
	waitErr := waitWithoutRefresh(ctx, b, "backend-prod", merge)
	poll := time.Since(start).Seconds()
	revert(merge, number)
	atLeast := ""
	if waitErr != nil {
		atLeast = "≥ "
		b.Logf("Argo CD's own poll had not brought backend-prod to the merge commit after %s: %v", pollLimit, waitErr)
	}
	b.ReportMetric(poll, "s/merge-to-healthy-argocd-poll")
	b.ReportMetric(poll/healthy, "x-faster")
	b.Logf("tug promote → PR %.2fs vs dry run %.2fs (forge writes ×%.2f); merge → prod Synced+Healthy: tug wait %.2fs, Argo CD's own poll %s%.2fs (%s%.1f× faster)",
		pr, dr, pr/dr, healthy, atLeast, poll, atLeast, poll/healthy)
}
