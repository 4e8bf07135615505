package appstatus

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// Op is the sync operation an Application is running or ran last, as
// Argo CD records it in status.operationState.
type Op struct {
	// Phase: Running, Terminating, Succeeded, Failed or Error. A failed
	// attempt that will be retried stays Running (with RetryCount > 0).
	Phase string `json:"phase"`
	// Revision is the commit the operation syncs (Revisions: one per
	// source). Empty while a retry with refresh has not resolved the
	// branch's latest commit yet.
	Revision  string   `json:"revision,omitempty"`
	Revisions []string `json:"revisions,omitempty"`
	Message   string   `json:"message,omitempty"`
	// Failed are the resources the last attempt could not sync, with
	// Argo CD's reason ("ClusterRole/x: resource … is not permitted in
	// project shop"): the operation's message alone often only says "one
	// or more synchronization tasks are not valid".
	Failed []string `json:"failedResources,omitempty"`
	// RetryCount is how many times the sync failed and was retried;
	// RetryLimit how many retries it may make (negative: no limit).
	RetryCount int64 `json:"retryCount,omitempty"`
	RetryLimit int64 `json:"retryLimit,omitempty"`
	// Refresh: each retry syncs the branch's latest commit instead of
	// Revision (syncPolicy.retry.refresh).
	Refresh   bool      `json:"retryRefresh,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	// NextRetry is when a failed attempt is tried again (nil when the
	// operation is not waiting for a retry).
	NextRetry *time.Time `json:"nextRetry,omitempty"`
}

// operationOf summarizes a's operation state (nil if it never ran one).
func operationOf(a *v1alpha1.Application) *Op {
	st := a.Status.OperationState
	if st == nil {
		return nil
	}
	op := &Op{
		Phase:      string(st.Phase),
		Message:    st.Message,
		RetryCount: st.RetryCount,
		RetryLimit: st.Operation.Retry.Limit,
		Refresh:    st.Operation.Retry.Refresh,
		StartedAt:  st.StartedAt.Time,
	}
	// The sync result holds the concrete commit once the attempt resolved
	// it; before that, the operation's request (a SHA for automated syncs).
	if r := st.SyncResult; r != nil && (r.Revision != "" || len(r.Revisions) > 0) {
		op.Revision, op.Revisions = r.Revision, r.Revisions
	} else if s := st.Operation.Sync; s != nil {
		op.Revision, op.Revisions = s.Revision, s.Revisions
	}
	if r := st.SyncResult; r != nil {
		for _, res := range r.Resources {
			if res.Status == synccommon.ResultCodeSyncFailed {
				op.Failed = append(op.Failed, fmt.Sprintf("%s/%s: %s", res.Kind, res.Name, oneLine(res.Message)))
			}
		}
	}
	if a.Spec.HasMultipleSources() {
		op.Revision = ""
	} else {
		op.Revisions = nil
	}
	// A failed attempt that will be retried: Running with FinishedAt set,
	// retried at FinishedAt + backoff (Argo CD's own formula).
	if st.Phase == "Running" && st.FinishedAt != nil {
		if at, err := st.Operation.Retry.NextRetryAt(st.FinishedAt.Time, st.RetryCount); err == nil {
			op.NextRetry = &at
		}
	}
	return op
}

// Active reports whether the operation is still going (running, waiting
// for a retry, or terminating): Argo CD starts no other sync meanwhile.
func (o *Op) Active() bool {
	return o != nil && (o.Phase == "Running" || o.Phase == "Terminating")
}

// Retrying reports whether the operation failed at least once and is
// still going.
func (o *Op) Retrying() bool { return o.Active() && o.Phase == "Running" && o.RetryCount > 0 }

// RevisionText is the operation's revision(s), abbreviated; "the latest
// commit" while a refreshing retry has not resolved it yet.
func (o *Op) RevisionText() string {
	var revs []string
	for _, r := range o.Revisions {
		revs = append(revs, ShortRevision(r))
	}
	if len(revs) == 0 && o.Revision != "" {
		revs = append(revs, ShortRevision(o.Revision))
	}
	if len(revs) == 0 {
		return "the latest commit"
	}
	return strings.Join(revs, ",")
}

// Targets reports whether the operation syncs revision: every one of its
// revisions that is a commit must match (chart versions of other sources
// are left alone). An operation whose revision is not known yet does not
// target anything.
func (o *Op) Targets(revision string) bool {
	revs := o.Revisions
	if len(revs) == 0 {
		revs = []string{o.Revision}
	}
	matched := false
	for _, r := range revs {
		switch {
		case RevisionMatches(r, revision):
			matched = true
		case len(r) == 40 && isHex(r):
			return false // a commit, and not the one wanted
		}
	}
	return matched
}

// known reports whether the operation's revision is resolved.
func (o *Op) known() bool { return o.Revision != "" || len(o.Revisions) > 0 }

// attemptText is "attempt n of m" (or "attempt n" with no limit).
func (o *Op) attemptText() string {
	if o.RetryLimit < 0 {
		return fmt.Sprintf("attempt %d", o.RetryCount)
	}
	return fmt.Sprintf("attempt %d of %d", o.RetryCount, o.RetryLimit)
}

// Describe is one line about the operation: phase, revision, retries and
// Argo CD's message (cut to max characters when max > 0).
func (o *Op) Describe(max int) string {
	s := "sync of " + o.RevisionText() + " " + o.Phase
	if o.RetryCount > 0 {
		s += ", " + o.attemptText()
	}
	msg := oneLine(o.Message)
	if n := len(o.Failed); n > 0 {
		msg += " (" + o.Failed[0]
		if n > 1 {
			msg += fmt.Sprintf("; %d more", n-1)
		}
		msg += ")"
	}
	if msg != "" {
		if r := []rune(msg); max > 0 && len(r) > max {
			msg = string(r[:max]) + "…"
		}
		s += ": " + msg
	}
	return s
}

// Advice says what becomes of a failing operation at another revision than
// want, and how to end it when Argo CD would not do so by itself.
func (o *Op) Advice(app, want string, now time.Time) string {
	next := ""
	if o.NextRetry != nil {
		if d := o.NextRetry.Sub(now).Round(time.Second); d > 0 {
			next = fmt.Sprintf(" (in %s)", d)
		} else {
			next = " (due now)"
		}
	}
	if o.Refresh {
		return fmt.Sprintf("a sync of %s is still retrying (%s); it will be replaced by %s on its next retry%s",
			o.RevisionText(), o.attemptText(), ShortRevision(want), next)
	}
	return fmt.Sprintf("a sync of %s is still retrying (%s) and will not pick up %s until its retries run out "+
		"(its retry does not set refresh: true); end it with `argocd app terminate-op %s`, or `tug wait %s --terminate-stale`, "+
		"which does the same through the Kubernetes API (status.operationState.phase: Terminating)",
		o.RevisionText(), o.attemptText(), ShortRevision(want), app, app)
}

// TerminateOperation ends an Application's running operation the way
// `argocd app terminate-op` does: it sets status.operationState.phase to
// Terminating, and Argo CD's controller stops the sync and records it as
// failed; automated sync then starts afresh at the current commit. The
// patch applies only if the operation is still the one that started at
// startedAt and is still Running, so a newer operation is never ended.
// Needs only Kubernetes RBAC to patch Applications.
func TerminateOperation(ctx context.Context, dyn dynamic.Interface, namespace, name string, startedAt time.Time) error {
	started, err := json.Marshal(startedAt.UTC().Format(time.RFC3339))
	if err != nil {
		return err
	}
	patch := fmt.Sprintf(`[{"op":"test","path":"/status/operationState/phase","value":"Running"},`+
		`{"op":"test","path":"/status/operationState/startedAt","value":%s},`+
		`{"op":"replace","path":"/status/operationState/phase","value":"Terminating"}]`, started)
	_, err = dyn.Resource(ApplicationGVR).Namespace(namespace).Patch(ctx, name, types.JSONPatchType, []byte(patch), metav1PatchOptions)
	if err != nil {
		return fmt.Errorf("terminate the operation of Application %s/%s: %w", namespace, name, err)
	}
	return nil
}
