package appstatus

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// applyError is what Argo CD records when the API server rejects a
// rendered Deployment (replicas: "two"), with its retry suffix.
const applyError = `one or more objects failed to apply, reason: Deployment.apps "backend" is invalid: spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string". Retrying attempt #2 at 12:03PM.`

// retrying is an app whose automated sync of rev failed twice and waits
// for its third attempt, as Argo CD leaves it between retries: phase
// Running, FinishedAt set, RetryCount 2, the failed commit in SyncResult.
func retrying(name, syncedAt, rev string, refresh bool) v1alpha1.Application {
	a := app(name, "Synced", "Healthy", syncedAt)
	finished := metav1.NewTime(time.Now().Add(-time.Second))
	a.Status.OperationState = &v1alpha1.OperationState{
		Operation: v1alpha1.Operation{
			Sync:        &v1alpha1.SyncOperation{Revision: rev},
			InitiatedBy: v1alpha1.OperationInitiator{Automated: true},
			Retry:       v1alpha1.RetryStrategy{Limit: 8, Refresh: refresh, Backoff: &v1alpha1.Backoff{Duration: "1s", MaxDuration: "3m"}},
		},
		Phase:      synccommon.OperationRunning,
		Message:    applyError,
		SyncResult: &v1alpha1.SyncOperationResult{Revision: rev},
		StartedAt:  metav1.NewTime(time.Now().Add(-10 * time.Second)),
		FinishedAt: &finished,
		RetryCount: 2,
	}
	return a
}

func TestEvaluateStaleOperationWithRefreshIsNotReady(t *testing.T) {
	// The fix (shaNew) is what Argo CD compares to and it looks Synced and
	// Healthy, but the sync of the broken commit still runs.
	apps := []v1alpha1.Application{retrying("backend-dev", shaNew, shaOld, true)}
	s := Evaluate(apps, WaitOptions{Apps: []string{"backend-dev"}, Revision: shaNew})[0]
	if s.Ready {
		t.Fatalf("ready while a sync of the old commit retries: %+v", s)
	}
	for _, want := range []string{"sync of 2222222 Running", "attempt 2 of 8", "spec.replicas: Invalid value"} {
		if !strings.Contains(s.Reason, want) {
			t.Errorf("reason %q lacks %q", s.Reason, want)
		}
	}
	if !s.StaleOp || s.Target != shaNew {
		t.Errorf("stale=%v target=%s, want a stale operation against %s", s.StaleOp, s.Target, shaNew)
	}
	want := "a sync of 2222222 is still retrying (attempt 2 of 8); it will be replaced by 1111111 on its next retry"
	if !strings.HasPrefix(s.Advice, want) {
		t.Errorf("advice = %q, want it to start with %q", s.Advice, want)
	}
	if s.Failed || failed([]State{s}) != nil {
		t.Error("a retrying operation failed the wait; its next retry may fix it")
	}

	var buf bytes.Buffer
	WriteFailure(&buf, &WaitResult{Apps: []State{s}})
	for _, want := range []string{"  sync of 2222222 Running, attempt 2 of 8: one or more objects failed to apply", "  → " + want} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("failure report lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestEvaluateStaleOperationWithoutRefreshSaysHowToEndIt(t *testing.T) {
	apps := []v1alpha1.Application{retrying("backend-dev", shaNew, shaOld, false)}
	// No --revision: the sync revision is the target.
	s := Evaluate(apps, WaitOptions{Apps: []string{"backend-dev"}})[0]
	if s.Ready || !s.StaleOp {
		t.Fatalf("ready=%v stale=%v, want a stale operation that is not ready", s.Ready, s.StaleOp)
	}
	for _, want := range []string{"a sync of 2222222 is still retrying (attempt 2 of 8) and will not pick up 1111111",
		"argocd app terminate-op backend-dev", "tug wait backend-dev --terminate-stale", "status.operationState.phase: Terminating"} {
		if !strings.Contains(s.Advice, want) {
			t.Errorf("advice lacks %q: %s", want, s.Advice)
		}
	}
}

func TestEvaluateOperationOfTheWantedRevision(t *testing.T) {
	// Failing at the wanted commit itself: not ready, not stale (there is
	// nothing newer to move on to).
	apps := []v1alpha1.Application{retrying("backend-dev", shaNew, shaNew, false)}
	s := Evaluate(apps, WaitOptions{Apps: []string{"backend-dev"}, Revision: shaNew[:7]})[0]
	if s.Ready || s.StaleOp || s.Advice != "" || !strings.Contains(s.Reason, "sync of 1111111 Running, attempt 2 of 8") {
		t.Errorf("%+v", s)
	}
	// A retry with refresh that has not resolved the branch yet: its
	// revision is unknown, so it is not called stale.
	apps[0].Status.OperationState.Operation.Sync.Revision = ""
	apps[0].Status.OperationState.SyncResult = nil
	apps[0].Status.OperationState.Operation.Retry.Refresh = true
	s = Evaluate(apps, WaitOptions{Apps: []string{"backend-dev"}, Revision: shaNew})[0]
	if s.Ready || s.StaleOp || !strings.Contains(s.Reason, "sync of the latest commit Running") {
		t.Errorf("unresolved retry: %+v", s)
	}
}

func TestEvaluateFinishedOperationAtAnOlderRevisionIsDone(t *testing.T) {
	// A commit that does not change this app: Argo CD compares at the new
	// commit and finds it Synced without running a sync, so the last
	// operation stays at an older one. That app is done.
	a := app("frontend-dev", "Synced", "Healthy", shaNew)
	a.Status.OperationState = &v1alpha1.OperationState{
		Operation:  v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{Revision: shaOld}},
		Phase:      synccommon.OperationSucceeded,
		SyncResult: &v1alpha1.SyncOperationResult{Revision: shaOld},
	}
	if s := Evaluate([]v1alpha1.Application{a}, WaitOptions{Apps: []string{"frontend-dev"}, Revision: shaNew})[0]; !s.Ready {
		t.Errorf("not ready: %+v", s)
	}
	// The same after the retries of a broken commit ran out, once a revert
	// made Git equal to what runs: Synced at the revert, nothing to sync.
	a.Status.OperationState.Phase = synccommon.OperationFailed
	if s := Evaluate([]v1alpha1.Application{a}, WaitOptions{Apps: []string{"frontend-dev"}, Revision: shaNew})[0]; !s.Ready || s.Failed {
		t.Errorf("failed sync of an older commit, Synced at the new one: %+v", s)
	}
}

func TestEvaluateFailedSyncOfTheWantedRevisionIsFinal(t *testing.T) {
	a := app("backend-dev", "OutOfSync", "Healthy", shaNew)
	a.Status.OperationState = &v1alpha1.OperationState{
		Operation:  v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{Revision: shaNew}, Retry: v1alpha1.RetryStrategy{Limit: 8}},
		Phase:      synccommon.OperationFailed,
		Message:    "one or more objects failed to apply (retried 8 times).",
		SyncResult: &v1alpha1.SyncOperationResult{Revision: shaNew},
		RetryCount: 8,
	}
	states := Evaluate([]v1alpha1.Application{a}, WaitOptions{Apps: []string{"backend-dev"}, Revision: shaNew})
	if !states[0].Failed || failed(states) != ErrSyncFailed {
		t.Errorf("a sync of the wanted commit that failed for good: %+v (err %v)", states[0], failed(states))
	}
	// At an older commit automated sync will try the new one: keep waiting.
	a.Status.OperationState.SyncResult.Revision = shaOld
	a.Status.OperationState.Operation.Sync.Revision = shaOld
	if s := Evaluate([]v1alpha1.Application{a}, WaitOptions{Apps: []string{"backend-dev"}, Revision: shaNew})[0]; s.Failed {
		t.Errorf("failed sync of an older commit failed the wait: %+v", s)
	}
}

func TestTableShowsTheOperationInline(t *testing.T) {
	a := retrying("backend-dev", shaNew, shaOld, true)
	var buf bytes.Buffer
	if err := WriteTable(&buf, Tree([]v1alpha1.Application{a})); err != nil {
		t.Fatal(err)
	}
	want := "  ~ sync of 2222222 Running, attempt 2 of 8: one or more objects failed to apply"
	if !strings.Contains(buf.String(), want) || !strings.Contains(buf.String(), "(not 1111111, the revision shown)") {
		t.Errorf("table lacks the operation line %q:\n%s", want, buf.String())
	}
	// A succeeded operation is not worth a line.
	a.Status.OperationState.Phase = synccommon.OperationSucceeded
	buf.Reset()
	_ = WriteTable(&buf, Tree([]v1alpha1.Application{a}))
	if strings.Contains(buf.String(), "~") {
		t.Errorf("succeeded operation shown:\n%s", buf.String())
	}
}

func TestOperationNextRetryFollowsArgoCDsBackoff(t *testing.T) {
	a := retrying("backend-dev", shaNew, shaOld, true)
	op := operationOf(&a)
	// 1 s × 2^2 after the failed attempt finished.
	want := a.Status.OperationState.FinishedAt.Add(4 * time.Second)
	if op.NextRetry == nil || !op.NextRetry.Equal(want) {
		t.Errorf("next retry %v, want %v", op.NextRetry, want)
	}
	if got := op.Advice("backend-dev", shaNew, want.Add(-3*time.Second)); !strings.HasSuffix(got, "on its next retry (in 3s)") {
		t.Errorf("advice %q does not say when", got)
	}
}

func TestOperationNamesTheResourcesThatFailed(t *testing.T) {
	// A kind the project does not permit: Argo CD's operation message is
	// generic, the reason is on the resource.
	a := retrying("e2e", shaNew, shaOld, true)
	st := a.Status.OperationState
	st.Message = "one or more synchronization tasks are not valid. Retrying attempt #2 at 1:05PM."
	st.SyncResult.Resources = v1alpha1.ResourceResults{
		{Group: "", Kind: "ConfigMap", Name: "e2e", Status: synccommon.ResultCodeSynced, Message: "configmap/e2e configured"},
		{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "e2e", Status: synccommon.ResultCodeSyncFailed,
			Message: "resource rbac.authorization.k8s.io:ClusterRole is not permitted in project shop"},
	}
	got := operationOf(&a).Describe(0)
	want := "sync of 2222222 Running, attempt 2 of 8: one or more synchronization tasks are not valid. Retrying attempt #2 at 1:05PM. " +
		"(ClusterRole/e2e: resource rbac.authorization.k8s.io:ClusterRole is not permitted in project shop)"
	if got != want {
		t.Errorf("Describe = %q\nwant       %q", got, want)
	}
	if short := operationOf(&a).Describe(20); !strings.HasSuffix(short, "…") || len([]rune(short)) > len("sync of 2222222 Running, attempt 2 of 8: ")+21 {
		t.Errorf("Describe(20) = %q, want the message cut to 20 characters", short)
	}
}
