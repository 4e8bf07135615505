package e2e

// Faults in the lab: a component killed with SIGKILL in the middle of the
// work it does. The lab's supervisor starts it again (after its backoff),
// `tug lab status` counts the restart, and the work finishes — a sync
// lands, a promotion succeeds on a re-run — with nothing lost. Each test
// finds the process through `tug lab status -o json`, never by its name,
// and leaves the lab with every component healthy.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/lab"
)

// labStatus is `tug lab status -o json`, as a user reads it (exit 1 means
// a component is unhealthy; the JSON is printed all the same).
func labStatus(ctx context.Context) (*lab.Status, error) {
	cmd := exec.CommandContext(ctx, env.tug, "lab", "status", "-o", "json", "--name", env.name, "--state-dir", env.stateRoot)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return nil, fmt.Errorf("tug lab status: %v: %s", err, errOut.String())
	}
	var st lab.Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		return nil, fmt.Errorf("tug lab status -o json: %v: %q", err, out.String())
	}
	return &st, nil
}

func statusComponent(st *lab.Status, name string) (lab.ComponentStatus, bool) {
	for _, c := range st.Components {
		if c.Name == name {
			return c, true
		}
	}
	return lab.ComponentStatus{}, false
}

func statusTable(st *lab.Status) string {
	var b strings.Builder
	for _, c := range st.Components {
		fmt.Fprintf(&b, "  %-34s pid %-7d %-8s restarts %d healthy %v %s\n", c.Name, c.PID, c.State, c.Restarts, c.Healthy, c.Error)
	}
	return b.String()
}

// kill9 sends SIGKILL to the component's process, as lab status names it.
func kill9(t *testing.T, name string) lab.ComponentStatus {
	t.Helper()
	st, err := labStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, ok := statusComponent(st, name)
	if !ok || !c.Healthy || !c.Proc().Alive() {
		t.Fatalf("%s is not a running, healthy component before the fault:\n%s", name, statusTable(st))
	}
	if err := syscall.Kill(c.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s (pid %d): %v", name, c.PID, err)
	}
	t.Logf("kill -9 %s (pid %d, %d restarts before)", name, c.PID, c.Restarts)
	return c
}

// waitRestarted waits until lab status shows the component running again
// as a new process, with one more restart, and healthy.
func waitRestarted(t *testing.T, before lab.ComponentStatus, killed time.Time) {
	t.Helper()
	var last *lab.Status
	eventually(t, 2*time.Minute, before.Name+" restarted by the supervisor", func(ctx context.Context) error {
		st, err := labStatus(ctx)
		if err != nil {
			return err
		}
		last = st
		c, ok := statusComponent(st, before.Name)
		switch {
		case !ok:
			return fmt.Errorf("no %s in lab status", before.Name)
		case c.PID == before.PID || c.Restarts <= before.Restarts:
			return fmt.Errorf("%s: pid %d, %d restarts, state %s: not restarted yet", c.Name, c.PID, c.Restarts, c.State)
		case !c.Healthy:
			return fmt.Errorf("%s restarted (pid %d) but not healthy yet", c.Name, c.PID)
		}
		t.Logf("%s restarted by the supervisor as pid %d (restarts %d → %d), healthy %s after the kill",
			c.Name, c.PID, before.Restarts, c.Restarts, time.Since(killed).Round(10*time.Millisecond))
		return nil
	}, func() string {
		if last == nil {
			return ""
		}
		return statusTable(last)
	})
}

// labHealthy waits until every component is healthy: how each fault test
// leaves the suite's lab.
func labHealthy(t *testing.T) {
	t.Helper()
	var last *lab.Status
	eventually(t, 2*time.Minute, "every lab component healthy", func(ctx context.Context) error {
		st, err := labStatus(ctx)
		if err != nil {
			return err
		}
		last = st
		for _, c := range st.Components {
			if !c.Healthy {
				return fmt.Errorf("%s is not healthy (%s %s)", c.Name, c.State, c.Error)
			}
		}
		return nil
	}, func() string {
		if last == nil {
			return ""
		}
		return statusTable(last)
	})
}

// faultWaves is how many sync waves the fault app's ConfigMaps span. Argo
// CD waits ARGOCD_SYNC_WAVE_DELAY (2 s) between waves, so its sync runs
// for several seconds: long enough to kill a component in the middle of it.
const faultWaves = 4

// faultConfigMaps are the fault app's files: one ConfigMap per sync wave,
// each holding version.
func faultConfigMaps(app, version string) map[string][]byte {
	files := map[string][]byte{}
	for w := range faultWaves {
		files[fmt.Sprintf("%s/wave-%d.yaml", ffDir(app), w)] = []byte(fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %s-wave-%d
  annotations:
    argocd.argoproj.io/sync-wave: "%d"
data:
  version: %q
`, app, w, w, version))
	}
	return files
}

// setUpFaultApp adds an Application like infra/gitops/apps/*.yaml (retry
// with refresh) deploying faultConfigMaps at version 1, and waits for it.
// The cleanups remove it and wait until it is pruned.
func setUpFaultApp(t *testing.T, app string) {
	t.Helper()
	appsFile := "infra/gitops/apps/" + app + ".yaml"
	files := faultConfigMaps(app, "1")
	added := []string{appsFile}
	for rel := range files {
		added = append(added, rel)
	}
	t.Cleanup(func() {
		eventually(t, 5*time.Minute, app+" pruned", func(ctx context.Context) error {
			a, err := application(ctx, t, app)
			if err != nil || a != nil {
				return fmt.Errorf("%s still exists (%v)", app, err)
			}
			return nil
		}, func() string { return appStatusTable(t) })
	})
	restorePromotionState(t, added...)
	files[appsFile] = []byte("# Added by e2e/fault_test.go on the lab's forge only.\n" + ffApplication(t, app, true))
	sha := forgeWriteFiles(t, "e2e: an Application to sync through a fault", files)
	mustTugWait(t, 5*time.Minute, sha, "root", app)
}

// waitSyncRunning waits until the app's sync of revision is under way
// (phase Running): the moment to inject the fault.
func waitSyncRunning(t *testing.T, app, revision string) {
	t.Helper()
	dyn := dynamicClient(t)
	eventually(t, 2*time.Minute, app+" syncing "+revision[:12], func(ctx context.Context) error {
		_ = appstatus.RequestRefresh(ctx, dyn, appstatus.DefaultNamespace, app)
		a, err := application(ctx, t, app)
		if err != nil || a == nil {
			return fmt.Errorf("read %s: %v", app, err)
		}
		if op := appstatus.Summarize(a).Op; op != nil && op.Phase == "Running" && op.Targets(revision) {
			t.Logf("%s: %s", app, op.Describe(0))
			return nil
		}
		return fmt.Errorf("%s is %s at %s, no sync of %s running", app, a.Status.Sync.Status, a.Status.Sync.Revision, revision[:12])
	}, func() string { return appStatusTable(t) })
}

// expectFaultConfigMaps checks every wave's ConfigMap holds version.
func expectFaultConfigMaps(t *testing.T, app, version string) {
	t.Helper()
	for w := range faultWaves {
		name := fmt.Sprintf("%s-wave-%d", app, w)
		cm, err := clientset(t).CoreV1().ConfigMaps("shop-dev").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("ConfigMap shop-dev/%s: %v", name, err)
			continue
		}
		if got := cm.Data["version"]; got != version {
			t.Errorf("ConfigMap shop-dev/%s holds version %q, want %q", name, got, version)
		}
	}
}

// syncThroughKill kills the component while the app syncs a new commit,
// then expects the restart and the app Synced and Healthy at that commit.
func syncThroughKill(t *testing.T, app, component string) {
	setUpFaultApp(t, app)
	sha := forgeWriteFiles(t, "e2e: version 2, synced through a killed "+component, faultConfigMaps(app, "2"))
	waitSyncRunning(t, app, sha)
	before := kill9(t, component)
	killed := time.Now()
	waitRestarted(t, before, killed)
	out := mustTugWait(t, 5*time.Minute, sha, app)
	t.Logf("%s Synced and Healthy at %s %s after the kill:\n%s", app, sha[:12], time.Since(killed).Round(10*time.Millisecond), out)
	expectFaultConfigMaps(t, app, "2")
	labHealthy(t)
}

// The API server dies in the middle of a sync: the supervisor starts it
// again on the same kine database, the sync lands, and what was stored
// before the kill (a ConfigMap written directly, the app's history) is
// still there.
func TestFaultAPIServerKilledWhileSyncing(t *testing.T) {
	const app = "e2e-fault-api"
	cs := clientset(t)
	ctx := context.Background()
	marker := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: app + "-marker", Namespace: "default"}, Data: map[string]string{"written": "before the kill"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, marker, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().ConfigMaps("default").Delete(context.Background(), marker.Name, metav1.DeleteOptions{})
	})
	syncThroughKill(t, app, "kube-apiserver")

	got, err := cs.CoreV1().ConfigMaps("default").Get(ctx, marker.Name, metav1.GetOptions{})
	if err != nil || got.Data["written"] != "before the kill" {
		t.Errorf("the ConfigMap written before the kill is lost or changed: %v %v", err, got)
	}
	a, err := application(ctx, t, app)
	if err != nil || a == nil {
		t.Fatalf("read %s: %v", app, err)
	}
	// Two syncs: version 1 at set-up, version 2 through the kill.
	if n := len(a.Status.History); n < 2 {
		t.Errorf("%s's history has %d entries, want at least 2 (the set-up sync and the one through the kill): %s", app, n, mustJSON(a.Status.History))
	}
}

// Argo CD's application controller dies in the middle of a sync: started
// again, it picks the operation up and the app ends Synced and Healthy at
// the commit.
func TestFaultApplicationControllerKilledWhileSyncing(t *testing.T) {
	syncThroughKill(t, "e2e-fault-ctrl", "argocd-application-controller")
}

// Gitea dies while `tug promote` talks to it: the promotion either
// finishes (the forge was back in time) or fails with an error that says
// what failed, without hanging; either way a re-run finishes the job and
// leaves exactly one open pull request for the promotion.
func TestFaultForgeKilledDuringPromotion(t *testing.T) {
	restorePromotionState(t)
	mustTugWait(t, 5*time.Minute, forgeHead(t), "backend-dev", "backend-prod")
	files := forgeFiles(t, backendDevValues, backendProdValues)
	if tagOf(t, backendDevValues, files[backendDevValues]) == tagOf(t, backendProdValues, files[backendProdValues]) {
		t.Fatal("dev and prod run the same tag on the forge; the test needs a promotion to make")
	}
	environ := promoteEnviron(t)
	done := make(chan promoteRun, 1)
	go func() { done <- runPromoteWith(environ, "backend", "--from", "dev", "--to", "prod") }()
	// The promotion clones the forge first: kill Gitea once a clone of the
	// repository has begun (its git child shows in Gitea's process group),
	// or at the latest when the promotion has had a second.
	before := kill9AtForgeGit(t, time.Second)
	killed := time.Now()
	first := <-done
	waitRestarted(t, before, killed)
	if first.err != nil {
		t.Logf("tug promote during the kill failed after %s:\n%s", first.took.Round(10*time.Millisecond), first.stderr)
		for _, bad := range []string{"panic:", "goroutine "} {
			if strings.Contains(first.stderr, bad) {
				t.Fatalf("tug promote crashed instead of reporting the forge's failure:\n%s", first.stderr)
			}
		}
		if !strings.Contains(first.stderr, "127.0.0.1:") && !strings.Contains(strings.ToLower(first.stderr), "forge") {
			t.Errorf("the failure does not say that the forge failed (its address or the word forge):\n%s", first.stderr)
		}
	} else {
		t.Logf("tug promote finished through the kill in %s: PR #%d", first.took.Round(10*time.Millisecond), first.res.PR.Number)
	}
	again := mustPromote(t, "backend", "--from", "dev", "--to", "prod")
	t.Logf("re-run: PR #%d on %s (created %v)", again.res.PR.Number, again.res.Branch, again.res.PRCreated)
	if first.err == nil && (again.res.PRCreated || again.res.PR.Number != first.res.PR.Number) {
		t.Errorf("the re-run opened PR #%d, not the first run's #%d", again.res.PR.Number, first.res.PR.Number)
	}
	open, _, err := giteaClient(t, forgeAdminToken(t)).ListRepoPullRequests(promoteRepo.Owner, promoteRepo.Name, gitea.ListPullRequestsOptions{State: gitea.StateOpen})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Index != again.res.PR.Number {
		var got []string
		for _, pr := range open {
			got = append(got, fmt.Sprintf("#%d %s", pr.Index, pr.Head.Ref))
		}
		t.Errorf("open pull requests after the re-run: %v, want only #%d", got, again.res.PR.Number)
	}
	if pr := getPullRequest(t, again.res.PR.Number); pr.Head == nil || pr.Head.Sha != again.res.Commit {
		t.Errorf("PR #%d's head is not the re-run's commit %s", again.res.PR.Number, again.res.Commit)
	}
	labHealthy(t)
}

// kill9AtForgeGit kills Gitea as soon as a git process runs in its group
// (a clone or push being served), or after at most wait.
func kill9AtForgeGit(t *testing.T, wait time.Duration) lab.ComponentStatus {
	t.Helper()
	st, err := labStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, ok := statusComponent(st, "gitea")
	if !ok {
		t.Fatalf("no gitea in lab status:\n%s", statusTable(st))
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) && !groupRunsGit(c.PID) {
		time.Sleep(5 * time.Millisecond)
	}
	return kill9(t, "gitea")
}

// groupRunsGit reports whether a git process (not Gitea itself) runs in
// process group pgid.
func groupRunsGit(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces.
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) && strings.HasPrefix(s[open+1:end], "git") && s[open+1:end] != "gitea" {
			return true
		}
	}
	return false
}
