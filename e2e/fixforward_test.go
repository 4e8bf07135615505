package e2e

// Fixing forward after a commit that fails at sync time: Argo CD keeps
// the failing sync operation running and retries it with backoff, and
// starts no other sync meanwhile. With syncPolicy.retry.refresh: true each
// retry syncs the branch's latest commit, so the fix (or a revert) lands at
// the next retry; without it the broken commit is retried until the
// retries run out. The tests run two Applications side by side, the same
// but for refresh, and break them with a ClusterRole, a kind the shop
// project does not permit: Argo CD refuses it when it syncs.

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tug-gitops/tug/internal/appstatus"
)

const (
	ffRefresh  = "e2e-ff-refresh" // retry.refresh: true, as infra/gitops/apps
	ffStale    = "e2e-ff-stale"   // the same retry without refresh
	ffAppsFile = "infra/gitops/apps/e2e-fixforward.yaml"
	// ffDenied is what Argo CD says when the sync meets the ClusterRole.
	ffDenied = "is not permitted in project shop"
)

func ffDir(app string) string       { return "e2e-fixtures/" + app }
func ffConfigMap(app string) string { return ffDir(app) + "/config.yaml" }
func ffBroken(app string) string    { return ffDir(app) + "/clusterrole.yaml" }

// ffApplication is a child of root like infra/gitops/apps/*.yaml, with the
// same retry (limit 8, 1 s doubling up to 3 min) and refresh on or off.
func ffApplication(t testing.TB, name string, refresh bool) string {
	return "---\n" + string(childApplication(t, name, ffDir(name),
		"retry:",
		"  limit: 8",
		fmt.Sprintf("  refresh: %v", refresh),
		"  backoff:",
		"    duration: 1s",
		"    factor: 2",
		"    maxDuration: 3m"))
}

func ffConfigMapYAML(name, version string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
data:
  version: %q
`, name, version))
}

// ffClusterRole is the commit's mistake: a cluster-scoped kind the shop
// project's whitelist (Namespace only) does not include.
func ffClusterRole(name string) []byte {
	return []byte(fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: %s
rules:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get]
`, name))
}

// setUpFixForwardApps adds the two Applications (a ConfigMap at version 1
// each) and waits for root and them at that commit. The cleanups put the
// lab back: pull requests closed, branches deleted, the files removed,
// root Synced and Healthy at the forge's head and both apps pruned.
func setUpFixForwardApps(t testing.TB) {
	t.Helper()
	apps := []string{ffRefresh, ffStale}
	var added []string
	for _, a := range apps {
		added = append(added, ffConfigMap(a), ffBroken(a))
	}
	added = append(added, ffAppsFile)
	// Registered first, so it runs last: after the restore commit root
	// prunes the Applications and their finalizer deletes the ConfigMaps.
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			left := ""
			for _, a := range apps {
				if app, err := application(context.Background(), t, a); err != nil || app != nil {
					left = fmt.Sprintf("%s still exists (%v)", a, err)
				}
			}
			if left == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("cleanup: %s\n%s", left, appStatusTable(t))
				return
			}
			time.Sleep(time.Second)
		}
	})
	restorePromotionState(t, added...)

	files := map[string][]byte{ffAppsFile: []byte("# Added by e2e/fixforward_test.go on the lab's forge only.\n" +
		ffApplication(t, ffRefresh, true) + ffApplication(t, ffStale, false))}
	for _, a := range apps {
		files[ffConfigMap(a)] = ffConfigMapYAML(a, "1")
	}
	sha := forgeWriteFiles(t, "e2e: two Applications to fix forward, with and without retry.refresh", files)
	mustTugWait(t, 5*time.Minute, sha, "root")
}

// ffFailing waits until each app's sync of revision has failed at least
// once with the project's refusal and is waiting to retry.
func ffFailing(t testing.TB, revision string, apps ...string) {
	t.Helper()
	dyn := dynamicClient(t)
	deadline := time.Now().Add(3 * time.Minute)
	for _, name := range apps {
		for {
			// The refresh request makes Argo CD see the commit now rather
			// than at its next poll.
			_ = appstatus.RequestRefresh(context.Background(), dyn, appstatus.DefaultNamespace, name)
			a, err := application(context.Background(), t, name)
			var op *appstatus.Op
			if err == nil && a != nil {
				op = appstatus.Summarize(a).Op
			}
			if op != nil && op.Retrying() && op.Targets(revision) && strings.Contains(op.Describe(0), ffDenied) {
				t.Logf("%s: %s", name, op.Describe(0))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no failing sync of %s after 3m (operation %+v, err %v)\n%s", name, revision[:12], op, err, appStatusTable(t))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// ffConfigVersion is the version the app's ConfigMap holds in the cluster.
func ffConfigVersion(t *testing.T, name string) string {
	t.Helper()
	cm, err := clientset(t).CoreV1().ConfigMaps("shop-dev").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap shop-dev/%s: %v", name, err)
	}
	return cm.Data["version"]
}

// TestFixForwardAfterSyncFailure: a commit that fails at sync time, then its
// fix. `tug wait` during the failure shows the failing operation; the app
// with retry.refresh runs the fix within seconds; the app without it is
// still retrying the broken commit, `tug wait` says so and how to end it,
// and `tug wait --terminate-stale --yes` ends it so the fix lands.
func TestFixForwardAfterSyncFailure(t *testing.T) {
	setUpFixForwardApps(t)
	broken := map[string][]byte{}
	fixed := map[string][]byte{}
	for _, a := range []string{ffRefresh, ffStale} {
		broken[ffConfigMap(a)], broken[ffBroken(a)] = ffConfigMapYAML(a, "2"), ffClusterRole(a)
		fixed[ffBroken(a)] = nil // the fix keeps version 2 and drops the ClusterRole
	}
	bad := forgeWriteFiles(t, "e2e: version 2, with a ClusterRole the shop project forbids", broken)
	ffFailing(t, bad, ffRefresh, ffStale)

	// During the failure tug wait shows the operation and its message.
	out, err := tugWait(t, 5*time.Second, bad, ffRefresh, ffStale)
	t.Logf("tug wait during the failure:\n%s", out)
	if err == nil {
		t.Fatal("tug wait succeeded while both syncs fail")
	}
	for _, want := range []string{"Not ready", ffRefresh, ffStale, "Running, attempt ", ffDenied} {
		if !strings.Contains(out, want) {
			t.Errorf("tug wait's report lacks %q", want)
		}
	}

	fix := forgeWriteFiles(t, "e2e: drop the ClusterRole", fixed)
	start := time.Now()
	out = mustTugWait(t, 3*time.Minute, fix, ffRefresh)
	withRefresh := time.Since(start)
	t.Logf("fix pushed → %s Synced+Healthy at %s: %.1fs\n%s", ffRefresh, fix[:12], withRefresh.Seconds(), lastLine(out))
	if v := ffConfigVersion(t, ffRefresh); v != "2" {
		t.Errorf("%s's ConfigMap has version %q after the fix, want 2", ffRefresh, v)
	}

	// Without refresh the broken commit is still being retried: tug wait
	// says so, and how to end it.
	out, err = tugWait(t, 10*time.Second, fix, ffStale)
	t.Logf("tug wait %s without refresh:\n%s", ffStale, out)
	if err == nil {
		t.Fatalf("%s is ready at the fix %.1fs after it, without refresh: the retries of %s should still run", ffStale, time.Since(start).Seconds(), bad[:12])
	}
	for _, want := range []string{"a sync of " + bad[:7] + " is still retrying (attempt ", "will not pick up " + fix[:7],
		"argocd app terminate-op " + ffStale, "--terminate-stale"} {
		if !strings.Contains(out, want) {
			t.Errorf("tug wait's report on %s lacks %q", ffStale, want)
		}
	}
	out, err = tugCmd(context.Background(), 3*time.Minute, "wait", ffStale, "--revision", fix, "--timeout", "2m",
		"--terminate-stale", "--yes", "--kubeconfig", env.kubeconfig)
	t.Logf("tug wait --terminate-stale --yes (%.1fs after the fix):\n%s", time.Since(start).Seconds(), out)
	if err != nil {
		t.Fatalf("tug wait %s --terminate-stale --yes: %v", ffStale, err)
	}
	if !strings.Contains(out, "terminated the sync of "+bad[:7]) {
		t.Errorf("tug wait --terminate-stale did not say it terminated the sync of %s", bad[:7])
	}
	if v := ffConfigVersion(t, ffStale); v != "2" {
		t.Errorf("%s's ConfigMap has version %q after the fix, want 2", ffStale, v)
	}
}

// TestFixForwardRevertThroughForge: the broken commit arrives by a merged
// pull request and is rolled back the documented way, a revert pull
// request; with retry.refresh the revert is running within seconds.
func TestFixForwardRevertThroughForge(t *testing.T) {
	setUpFixForwardApps(t)
	c := giteaClient(t, forgeAdminToken(t))
	const branch = "e2e-break-ff"
	_, _, err := c.CreateFile(promoteRepo.Owner, promoteRepo.Name, ffBroken(ffRefresh), gitea.CreateFileOptions{
		FileOptions: gitea.FileOptions{Message: "Grant " + ffRefresh + " a ClusterRole", BranchName: forgeBranch, NewBranchName: branch},
		Content:     base64.StdEncoding.EncodeToString(ffClusterRole(ffRefresh)),
	})
	if err != nil {
		t.Fatalf("commit the ClusterRole on branch %s: %v", branch, err)
	}
	pr, _, err := c.CreatePullRequest(promoteRepo.Owner, promoteRepo.Name, gitea.CreatePullRequestOption{
		Head: branch, Base: forgeBranch, Title: "Grant " + ffRefresh + " a ClusterRole",
	})
	if err != nil {
		t.Fatalf("open the pull request: %v", err)
	}
	merged := approveAndMerge(t, pr.Index)
	ffFailing(t, merged.MergeCommit, ffRefresh)
	out, _ := tugWait(t, 5*time.Second, merged.MergeCommit, ffRefresh)
	if !strings.Contains(out, ffDenied) {
		t.Errorf("tug wait during the failure does not show the operation's message %q:\n%s", ffDenied, out)
	}

	revert := revertByPullRequest(t, merged.MergeCommit, pr.Index)
	start := time.Now()
	out = mustTugWait(t, 3*time.Minute, revert.MergeCommit, ffRefresh)
	t.Logf("revert merged → %s Synced+Healthy at %s: %.1fs\n%s", ffRefresh, revert.MergeCommit[:12], time.Since(start).Seconds(), lastLine(out))
}

// BenchmarkFixForward measures the fix of a sync-time failure landing with
// and without retry.refresh, in one run: both apps break in one commit,
// fail, and are fixed in one commit; each is timed from the fix's push to
// Synced+Healthy at the fix with no operation left running (tug's wait,
// which asks Argo CD to refresh; nothing is terminated).
//
//	go test -run '^$' -bench FixForward -benchtime 1x -timeout 30m ./e2e
func BenchmarkFixForward(b *testing.B) {
	setUpFixForwardApps(b)
	apps := []string{ffRefresh, ffStale}
	for i := 0; i < b.N; i++ {
		broken, fixed := map[string][]byte{}, map[string][]byte{}
		for _, a := range apps {
			broken[ffBroken(a)], fixed[ffBroken(a)] = ffClusterRole(a), nil
		}
		bad := forgeWriteFiles(b, "bench: a ClusterRole the shop project forbids", broken)
		ffFailing(b, bad, apps...)
		fix := forgeWriteFiles(b, "bench: drop the ClusterRole", fixed)
		start := time.Now()
		took := make([]time.Duration, len(apps))
		errs := make([]error, len(apps))
		var wg sync.WaitGroup
		for j, a := range apps {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				_, errs[j] = appstatus.Wait(ctx, dynamicClient(b), appstatus.WaitOptions{Apps: []string{a}, Revision: fix})
				took[j] = time.Since(start)
			})
		}
		wg.Wait()
		for j, a := range apps {
			if errs[j] != nil {
				b.Fatalf("%s not Synced+Healthy at %s: %v\n%s", a, fix[:12], errs[j], appStatusTable(b))
			}
		}
		b.ReportMetric(took[0].Seconds(), "s/fix-with-refresh")
		b.ReportMetric(took[1].Seconds(), "s/fix-without-refresh")
		b.Logf("fix pushed → Synced+Healthy: %.1fs with retry.refresh, %.1fs without (%.0f× longer)",
			took[0].Seconds(), took[1].Seconds(), took[1].Seconds()/took[0].Seconds())
	}
}
