package appstatus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
)

// WaitOptions say what to wait for.
type WaitOptions struct {
	// Namespace of the Applications (default argocd).
	Namespace string
	// Apps to wait for; each one's child Applications are included,
	// recursively. Empty with All: every Application.
	Apps []string
	All  bool
	// Revision, if set, is the commit the apps must be synced to. A short
	// SHA (at least 7 characters) matches as a prefix. It applies to every
	// source from the Git repositories of the named apps (for All: every
	// source); sources from other repositories (a Helm chart repository, a
	// child from another repo) only need Synced and Healthy.
	Revision string
	// PollInterval is the longest time between two reads while no
	// Application changes (default 2s). A change is read at once: between
	// reads, Wait watches the Applications.
	PollInterval time.Duration
	// RefreshInterval: how often to ask Argo CD again to refresh an app
	// that is still not at Revision (default 5s).
	RefreshInterval time.Duration
	// Progress receives a line whenever an app's state changes (nil: none).
	Progress io.Writer
	// TerminateStale, if set, is asked once per operation about every app
	// whose sync keeps retrying a revision other than the one waited for
	// (State.StaleOp); when it returns true the operation is terminated
	// (TerminateOperation) so that Argo CD syncs the wanted revision next.
	TerminateStale func(State) bool
}

// State is one app's standing in a wait.
type State struct {
	App
	Ready bool `json:"ready"`
	// Failed: Degraded at the wanted revision, which waiting will not fix.
	Failed bool `json:"failed,omitempty"`
	// Reason says what is missing for Ready ("" when Ready).
	Reason string `json:"reason,omitempty"`
	// Parent is the Application that manages this one ("" for a named app).
	Parent string `json:"parent,omitempty"`
	// Target is the revision the app has to reach: the one waited for, or
	// its sync revision when none was given.
	Target string `json:"target,omitempty"`
	// StaleOp: the app's sync operation failed and keeps retrying a revision
	// other than Target; Advice says what becomes of it.
	StaleOp bool   `json:"staleOperation,omitempty"`
	Advice  string `json:"advice,omitempty"`
	// stale: not at the wanted revision yet (a refresh may help).
	stale bool
}

// WaitResult is the final standing of every app waited for.
type WaitResult struct {
	Ready   bool          `json:"ready"`
	Elapsed time.Duration `json:"-"`
	Seconds float64       `json:"seconds"` // Elapsed, for JSON/YAML readers
	Apps    []State       `json:"apps"`
}

// NotReady lists the apps that are not Ready.
func (r *WaitResult) NotReady() []State {
	var out []State
	for _, s := range r.Apps {
		if !s.Ready {
			out = append(out, s)
		}
	}
	return out
}

// Errors Wait returns with a result.
var (
	ErrTimeout  = errors.New("timed out waiting for Synced and Healthy")
	ErrDegraded = errors.New("an application is Degraded")
	// ErrSyncFailed: a sync of the wanted revision failed for good (its
	// retries ran out) and Argo CD will not sync that revision again.
	ErrSyncFailed = errors.New("a sync failed")
)

// Wait polls the Applications until every target is Synced and Healthy at
// opts.Revision (WaitResult.Ready), one is Degraded at it (ErrDegraded), or
// ctx ends (ErrTimeout). Instead of waiting for Argo CD's poll it sets the
// refresh annotation on targets that are behind, and repeats that while
// they stay behind.
func Wait(ctx context.Context, dyn dynamic.Interface, opts WaitOptions) (*WaitResult, error) {
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = 5 * time.Second
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	start := time.Now()
	res := &WaitResult{}
	lastLine := map[string]string{}
	refreshed := map[string]time.Time{}
	asked := map[string]bool{} // app/operation start → asked to terminate
	var lastErr error
	for {
		apps, version, err := listAt(ctx, dyn, opts.Namespace)
		if err != nil && ctx.Err() == nil && (lastErr == nil || lastErr.Error() != err.Error()) {
			fmt.Fprintf(progress, "%6.1fs  %v (retrying)\n", time.Since(start).Seconds(), err)
		}
		lastErr = err
		if err == nil {
			res.Apps = Evaluate(apps, opts)
			res.Elapsed = time.Since(start)
			res.Seconds = res.Elapsed.Seconds()
			for _, s := range res.Apps {
				if line := s.line(); lastLine[s.Name] != line {
					lastLine[s.Name] = line
					fmt.Fprintf(progress, "%6.1fs  %s\n", res.Elapsed.Seconds(), line)
				}
			}
			if allReady(res.Apps) {
				res.Ready = true
				return res, nil
			}
			if err := failed(res.Apps); err != nil {
				return res, err
			}
			requestRefreshes(ctx, dyn, opts, apps, res.Apps, refreshed)
			terminateStale(ctx, dyn, opts, res.Apps, asked, func(format string, args ...any) {
				fmt.Fprintf(progress, "%6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
			})
		}
		if err == nil {
			waitForChange(ctx, dyn, opts.Namespace, version, opts.PollInterval)
		} else {
			sleep(ctx, opts.PollInterval)
		}
		if ctx.Err() != nil {
			res.Elapsed = time.Since(start)
			res.Seconds = res.Elapsed.Seconds()
			if lastErr != nil && res.Apps == nil {
				return res, fmt.Errorf("%w: %v", ErrTimeout, lastErr)
			}
			return res, ErrTimeout
		}
	}
}

// waitForChange returns once an Application in namespace changes after
// resource version version, after at most longest, or when ctx ends. Argo
// CD writes an Application's status as a sync goes on, so a waiter learns
// of Synced and Healthy as soon as they are written instead of at its next
// poll. A watch that cannot be opened (a user allowed to list but not to
// watch) or that ends early leaves the wait to the timer.
func waitForChange(ctx context.Context, dyn dynamic.Interface, namespace, version string, longest time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, longest)
	defer cancel()
	w, err := dyn.Resource(ApplicationGVR).Namespace(namespace).Watch(ctx, metav1.ListOptions{ResourceVersion: version})
	if err != nil {
		<-ctx.Done()
		return
	}
	defer w.Stop()
	select {
	case <-ctx.Done():
	case ev, open := <-w.ResultChan():
		if !open || ev.Type == watch.Error {
			// A closed or failed watch is no change: wait out the rest.
			<-ctx.Done()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func allReady(states []State) bool {
	for _, s := range states {
		if !s.Ready {
			return false
		}
	}
	return len(states) > 0
}

// failed returns ErrDegraded or ErrSyncFailed when an app's state is final
// and not ready, nil otherwise.
func failed(states []State) error {
	var err error
	for _, s := range states {
		switch {
		case !s.Failed:
		case s.Health == "Degraded":
			return ErrDegraded
		default:
			err = ErrSyncFailed
		}
	}
	return err
}

// terminateStale offers every stale operation to opts.TerminateStale (once
// per operation) and terminates those it accepts.
func terminateStale(ctx context.Context, dyn dynamic.Interface, opts WaitOptions, states []State, asked map[string]bool, say func(string, ...any)) {
	if opts.TerminateStale == nil {
		return
	}
	for _, s := range states {
		if !s.StaleOp {
			continue
		}
		key := s.Name + "@" + s.Op.StartedAt.String()
		if asked[key] {
			continue
		}
		asked[key] = true
		if !opts.TerminateStale(s) {
			continue
		}
		if err := TerminateOperation(ctx, dyn, opts.Namespace, s.Name, s.Op.StartedAt); err != nil {
			say("%s: %v", s.Name, err)
			continue
		}
		say("%s: terminated the sync of %s (%s); Argo CD syncs %s next", s.Name, s.Op.RevisionText(), s.Op.attemptText(), ShortRevision(s.Target))
	}
}

// requestRefreshes asks Argo CD to refresh targets that are behind: once
// for every target that is not Ready (with a revision: not at it yet),
// then every RefreshInterval while an app is still not at the wanted
// revision and Argo CD has consumed the previous request (it removes the
// annotation). An app already compared at the wanted revision is syncing
// or rolling out: another refresh would only make Argo CD fetch and
// compare it again while it syncs, holding the repo-server's lock on the
// repository that the sync's own comparison needs.
func requestRefreshes(ctx context.Context, dyn dynamic.Interface, opts WaitOptions, apps []v1alpha1.Application, states []State, refreshed map[string]time.Time) {
	pending := map[string]bool{}
	for i := range apps {
		if _, ok := apps[i].Annotations[v1alpha1.AnnotationKeyRefresh]; ok {
			pending[apps[i].Name] = true
		}
	}
	for _, s := range states {
		if s.Ready || s.Health == "Missing" || pending[s.Name] {
			continue
		}
		if opts.Revision != "" && !s.stale {
			continue
		}
		last, asked := refreshed[s.Name]
		if asked && (!s.stale || time.Since(last) < opts.RefreshInterval) {
			continue
		}
		if err := RequestRefresh(ctx, dyn, opts.Namespace, s.Name); err == nil {
			refreshed[s.Name] = time.Now()
		}
	}
}

// RequestRefresh sets argocd.argoproj.io/refresh=normal on an Application:
// Argo CD re-reads Git (the branch's latest commit) and re-compares at once,
// then removes the annotation. Needs only Kubernetes RBAC to patch
// Applications, no Argo CD token.
func RequestRefresh(ctx context.Context, dyn dynamic.Interface, namespace, name string) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"normal"}}}`, v1alpha1.AnnotationKeyRefresh)
	_, err := dyn.Resource(ApplicationGVR).Namespace(namespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1PatchOptions)
	if err != nil {
		return fmt.Errorf("request refresh of Application %s/%s: %w", namespace, name, err)
	}
	return nil
}

// Evaluate selects the apps opts names (plus their descendants) and judges
// each one. It is the pure core of Wait.
func Evaluate(apps []v1alpha1.Application, opts WaitOptions) []State {
	byName := map[string]*v1alpha1.Application{}
	for i := range apps {
		byName[apps[i].Name] = &apps[i]
	}
	names := opts.Apps
	if len(names) == 0 && opts.All {
		for i := range apps {
			names = append(names, apps[i].Name)
		}
	}
	// The repositories whose commits Revision names.
	var repos map[string]bool
	if !opts.All || len(opts.Apps) > 0 {
		repos = map[string]bool{}
		for _, n := range names {
			if a, ok := byName[n]; ok {
				for _, s := range a.Spec.GetSources() {
					repos[NormalizeRepoURL(s.RepoURL)] = true
				}
			}
		}
	}
	var out []State
	seen := map[string]bool{}
	var visit func(name, parent string)
	visit = func(name, parent string) {
		if seen[name] {
			return
		}
		seen[name] = true
		a, ok := byName[name]
		if !ok {
			reason := "Application not found"
			if parent != "" {
				reason = "not created yet by " + parent
			}
			out = append(out, State{App: App{Name: name, Sync: "Unknown", Health: "Missing"}, Reason: reason, Parent: parent, stale: true})
			return
		}
		s := judge(a, opts.Revision, repos)
		s.Parent = parent
		out = append(out, s)
		for _, c := range ChildNames(a) {
			visit(c, name)
		}
	}
	for _, n := range names {
		visit(n, "")
	}
	return out
}

// judge decides whether one app is Ready at revision.
func judge(a *v1alpha1.Application, revision string, repos map[string]bool) State {
	s := State{App: *Summarize(a)}
	atRevision, why := AtRevision(a, revision, repos)
	var reasons []string
	if !atRevision {
		s.stale = true
		reasons = append(reasons, why)
	}
	if s.Sync != string(v1alpha1.SyncStatusCodeSynced) {
		reasons = append(reasons, s.Sync)
	}
	if s.Health != "Healthy" {
		reasons = append(reasons, s.Health)
	}
	s.Target = revision
	if s.Target == "" {
		s.Target = a.Status.Sync.Revision
	}
	op := s.Op
	if op.Active() {
		// Whatever the sync status says, Argo CD starts no other sync while
		// this one runs or waits to retry.
		reasons = append(reasons, op.Describe(240))
		s.StaleOp = op.Retrying() && atRevision && s.Target != "" && op.known() && !op.Targets(s.Target) && !a.Spec.HasMultipleSources()
		if s.StaleOp {
			s.Advice = op.Advice(a.Name, s.Target, time.Now())
		}
	}
	for _, c := range a.Status.Conditions {
		if c.IsError() {
			reasons = append(reasons, c.Type)
		}
	}
	s.Ready = len(reasons) == 0
	s.Reason = strings.Join(reasons, ", ")
	// Degraded is final only when Argo CD has nothing left to do at the
	// revision: Synced, no sync running, not being deleted. Otherwise the
	// running sync (e.g. root pruning a removed, Degraded child) may still
	// heal it. Seen in the lab: root OutOfSync/Degraded while pruning.
	busy := op.Active()
	s.Failed = atRevision && s.Health == "Degraded" && s.Sync == string(v1alpha1.SyncStatusCodeSynced) &&
		!busy && a.DeletionTimestamp == nil
	// A sync of the wanted revision that failed for good: automated sync
	// does not try the same revision again, so only a new commit (or a
	// manual sync) can change anything.
	if op != nil && (op.Phase == "Failed" || op.Phase == "Error") && s.Target != "" && op.Targets(s.Target) &&
		s.Sync == string(v1alpha1.SyncStatusCodeOutOfSync) && atRevision && a.DeletionTimestamp == nil {
		s.Failed = true
		reasons = append(reasons, op.Describe(240))
		s.Reason = strings.Join(reasons, ", ")
	}
	return s
}

// AtRevision reports whether every source of a from one of repos (nil: any
// repo) was last compared at revision; why says what it is at otherwise.
func AtRevision(a *v1alpha1.Application, revision string, repos map[string]bool) (bool, string) {
	if revision == "" {
		return true, ""
	}
	sources := a.Spec.GetSources()
	revs := a.Status.Sync.Revisions
	if !a.Spec.HasMultipleSources() {
		revs = []string{a.Status.Sync.Revision}
	}
	for i, src := range sources {
		if repos != nil && !repos[NormalizeRepoURL(src.RepoURL)] {
			continue
		}
		have := ""
		if i < len(revs) {
			have = revs[i]
		}
		if !RevisionMatches(have, revision) {
			if have == "" {
				return false, "no revision yet, want " + ShortRevision(revision)
			}
			return false, fmt.Sprintf("at %s, want %s", ShortRevision(have), ShortRevision(revision))
		}
	}
	return true, ""
}

// RevisionMatches compares a full revision with a wanted one; a wanted
// SHA of 7+ hex characters matches as a prefix.
func RevisionMatches(have, want string) bool {
	have, want = strings.ToLower(have), strings.ToLower(want)
	if have == want {
		return have != ""
	}
	return len(want) >= 7 && isHex(want) && strings.HasPrefix(have, want)
}

// NormalizeRepoURL lets https://host/o/r, https://host/o/r.git and
// https://host/o/r/ compare equal.
func NormalizeRepoURL(u string) string {
	u = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(u)), "/")
	return strings.TrimSuffix(u, ".git")
}

// line is the progress line for a state.
func (s State) line() string {
	rev := revisionText(&s.App)
	if rev == "" {
		rev = "-"
	}
	line := fmt.Sprintf("%s: %s/%s at %s", s.Name, s.Sync, s.Health, rev)
	if s.Ready {
		return line + " ✓"
	}
	return line + " (" + s.Reason + ")"
}

// WriteFailure prints, for each app that is not Ready, why, its conditions
// and its unhealthy resources.
func WriteFailure(w io.Writer, res *WaitResult) {
	states := res.NotReady()
	sort.SliceStable(states, func(i, j int) bool { return states[i].Failed && !states[j].Failed })
	for _, s := range states {
		fmt.Fprintf(w, "%s: %s/%s (%s)\n", s.Name, s.Sync, s.Health, s.Reason)
		for _, c := range s.Conditions {
			fmt.Fprintf(w, "  condition %s: %s\n", c.Type, oneLine(c.Message))
		}
		if op := s.Op; op != nil && op.Phase != "Succeeded" {
			last := "last "
			if op.Active() {
				last = ""
			}
			fmt.Fprintf(w, "  %s%s\n", last, op.Describe(0))
		}
		if s.Advice != "" {
			fmt.Fprintf(w, "  → %s\n", s.Advice)
		}
		for _, r := range s.Unhealthy {
			fmt.Fprintf(w, "  resource %s\n", r)
		}
	}
}
