package e2e

// Speed figures for the GitOps loop (a push synced, a drift repaired),
// measured on the lab:
//
//	go test -run XXX -bench . -benchtime 1x ./e2e
//
// Each figure is printed with the alternative it is compared with, measured
// in the same run where that is affordable.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/drift"
)

// benchValues is the file the push benchmark changes: backend-dev's
// replica count, a change that really rolls out (pods are created and
// become Ready under kwok).
const benchValues = "charts/backend/values-dev.yaml"

// BenchmarkPushToSynced: a commit pushed to the forge → `tug wait
// backend-dev --revision SHA` returns (backend-dev Synced and Healthy at
// that commit). tug asks Argo CD to refresh instead of waiting for its poll;
// the alternative measured once in the same run is Argo CD on its own: in
// the lab that is the forge's push webhook (BenchmarkMergeToServingWebhook
// measures it beside tug wait), and without one Argo CD's poll
// (timeout.reconciliation 60s + up to 10s jitter in infra/argocd; upstream's
// default is 120s + 60s, i.e. up to 180 s).
func BenchmarkPushToSynced(b *testing.B) {
	mustTugWait(b, 3*time.Minute, "", "backend-dev")
	original := string(forgeFile(b, benchValues))
	replicas := []string{"replicaCount: 2", "replicaCount: 1"}
	step := 0
	push := func() string {
		from, to := replicas[(step+1)%2], replicas[step%2]
		step++
		return forgeCommit(b, fmt.Sprintf("bench: backend-dev %s", to), func(dir string) error {
			return replaceInFile(dir+"/"+benchValues, from, to)
		})
	}
	defer func() {
		if step%2 == 1 { // leave the file as it was
			forgeCommit(b, "bench: restore "+benchValues, func(dir string) error {
				return writeFile(dir+"/"+benchValues, original)
			})
		}
	}()

	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sha := push()
		b.StartTimer()
		start := time.Now()
		out, err := tugWait(b, 3*time.Minute, sha, "backend-dev")
		d := time.Since(start)
		if err != nil {
			b.Fatalf("tug wait: %v\n%s", err, out)
		}
		total += d
		b.Logf("push → tug wait Synced+Healthy at %s: %.2fs", sha[:12], d.Seconds())
	}
	b.StopTimer()
	withRefresh := total.Seconds() / float64(b.N)
	b.ReportMetric(withRefresh, "s/push-to-synced")

	// The alternative, once: nobody asks Argo CD to refresh. With
	// infra/argocd's settings Argo CD should notice within about 130 s
	// (git refs cached 60 s, apps re-compared every 60 s + ≤10 s jitter);
	// give it pollLimit and report a lower bound if it does not make it.
	const pollLimit = 200 * time.Second
	sha := push()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), pollLimit)
	defer cancel()
	err := waitWithoutRefresh(ctx, b, "backend-dev", sha)
	poll := time.Since(start).Seconds()
	if err != nil {
		b.ReportMetric(poll, "s/argocd-poll-not-within")
		b.Logf("push → Synced+Healthy: tug wait %.2fs; Argo CD's own poll had not picked up %s after %.0fs (%v); upstream's default poll waits up to 180 s",
			withRefresh, sha[:12], poll, err)
	} else {
		b.ReportMetric(poll, "s/argocd-poll")
		b.ReportMetric(poll/withRefresh, "x-faster")
		b.Logf("push → Synced+Healthy: tug wait %.2fs, Argo CD's own poll %.2fs (%.1f× faster); upstream's default poll waits up to 180 s",
			withRefresh, poll, poll/withRefresh)
	}
	// Either way, leave backend-dev at the head for what runs next.
	mustTugWait(b, 3*time.Minute, sha, "backend-dev")
}

// waitWithoutRefresh polls an Application, read-only, until it is Synced and
// Healthy at revision: what a user sees relying on Argo CD's polling.
func waitWithoutRefresh(ctx context.Context, b *testing.B, name, revision string) error {
	for {
		a, err := application(ctx, b, name)
		if err == nil && a != nil && ready(a, revision) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not Synced+Healthy at %s: %w", name, revision[:12], ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func ready(a *v1alpha1.Application, revision string) bool {
	at, _ := appstatus.AtRevision(a, revision, nil)
	return at && a.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced && a.Status.Health.Status == "Healthy"
}

// BenchmarkDriftHeal: how long Argo CD takes to undo a manual scale of
// backend-dev's Deployment, for a first drift and for drifts repeated right
// away (self-heal backs off: infra/argocd sets 1 s ×2 up to 30 s, reset after
// 60 s in sync; upstream's 2 s ×3 up to 300 s healed three drifts in a row
// after 0.7 s, 3.5 s and 16 s in this lab).
func BenchmarkDriftHeal(b *testing.B) {
	mustTugWait(b, 3*time.Minute, "", "backend-dev")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := drift.Verify(context.Background(), dynamicClient(b), drift.Options{
			App: "backend-dev", Kinds: []string{drift.Scale}, Repeat: 3, Timeout: 2 * time.Minute,
		})
		if err != nil {
			b.Fatal(err)
		}
		for j, c := range rep.Checks {
			if !c.Healed {
				b.Fatalf("drift %d (%s) not healed: %s", j+1, c.Change, c.Error)
			}
			label := "s/first-drift"
			if j > 0 {
				label = fmt.Sprintf("s/repeat-%d", j+1)
			}
			b.ReportMetric(c.Seconds, label)
			b.Logf("drift %d (%s on %s) healed after %.2fs", j+1, c.Change, c.Target, c.Seconds)
		}
	}
}

// BenchmarkMergeToServingWebhook: a commit lands on main (what a merged
// promotion PR is to Argo CD) → backend-dev Synced and Healthy at it, its
// pods rolled out. Each iteration measures it twice: once with nobody
// asking for a refresh (the forge's push webhook tells argocd-server),
// once with `tug wait`'s refresh request, so both figures come from the
// same run and the same load. One of the two commits scales up (a new pod
// must pass its readiness probe) and the other down; the modes swap
// directions every iteration, so with an even -benchtime each mode has as
// many of each.
func BenchmarkMergeToServingWebhook(b *testing.B) {
	const app = "backend-dev"
	mustTugWait(b, 3*time.Minute, "", app)
	original := string(forgeFile(b, benchValues))
	replicas := []string{"replicaCount: 1", "replicaCount: 2"}
	if !strings.Contains(original, replicas[0]) {
		b.Fatalf("%s has no %q", benchValues, replicas[0])
	}
	state := 0
	push := func() (sha, direction string) {
		from, to := replicas[state], replicas[1-state]
		state = 1 - state
		direction = map[int]string{1: "up", 0: "down"}[state]
		return forgeCommit(b, "bench: "+app+" "+to, func(dir string) error { return replaceInFile(dir+"/"+benchValues, from, to) }), direction
	}
	defer func() {
		if state == 1 {
			sha := forgeCommit(b, "bench: restore "+benchValues, func(dir string) error { return writeFile(dir+"/"+benchValues, original) })
			mustTugWait(b, 3*time.Minute, sha, app)
		}
	}()
	webhookOnly := func() (time.Duration, string) {
		sha, dir := push()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := waitWithoutRefresh(ctx, b, app, sha); err != nil {
			b.Fatalf("webhook only: %v", err)
		}
		return time.Since(start), dir
	}
	withRefresh := func() (time.Duration, string) {
		sha, dir := push()
		start := time.Now()
		if out, err := tugWait(b, 3*time.Minute, sha, app); err != nil {
			b.Fatalf("tug wait: %v\n%s", err, out)
		}
		return time.Since(start), dir
	}
	var hook, refresh time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var h, r time.Duration
		var hd, rd string
		if i%2 == 0 {
			h, hd = webhookOnly()
			r, rd = withRefresh()
		} else {
			r, rd = withRefresh()
			h, hd = webhookOnly()
		}
		hook += h
		refresh += r
		b.Logf("merge → %s serving: webhook only %.2fs (scale %s), tug wait's refresh %.2fs (scale %s)", app, h.Seconds(), hd, r.Seconds(), rd)
	}
	b.ReportMetric(hook.Seconds()/float64(b.N), "s/merge-to-serving-webhook")
	b.ReportMetric(refresh.Seconds()/float64(b.N), "s/merge-to-serving-tug-wait")
}
