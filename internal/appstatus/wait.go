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
	"k8s.io/apimachinery/pkg/types"
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
	// PollInterval between reads (default 500ms).
	PollInterval time.Duration
	// RefreshInterval: how often to ask Argo CD again to refresh an app
	// that is still not at Revision (default 5s).
	RefreshInterval time.Duration
	// Progress receives a line whenever an app's state changes (nil: none).
	Progress io.Writer
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
		opts.PollInterval = 500 * time.Millisecond
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
	tick := time.NewTicker(opts.PollInterval)
	defer tick.Stop()
	var lastErr error
	for {
		apps, err := List(ctx, dyn, opts.Namespace)
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
			if failed(res.Apps) {
				return res, ErrDegraded
			}
			requestRefreshes(ctx, dyn, opts, apps, res.Apps, refreshed)
		}
		select {
		case <-ctx.Done():
			res.Elapsed = time.Since(start)
			res.Seconds = res.Elapsed.Seconds()
			if lastErr != nil && res.Apps == nil {
				return res, fmt.Errorf("%w: %v", ErrTimeout, lastErr)
			}
			return res, ErrTimeout
		case <-tick.C:
		}
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

func failed(states []State) bool {
	for _, s := range states {
		if s.Failed {
			return true
		}
	}
	return false
}

// requestRefreshes asks Argo CD to refresh targets that are behind: once at
// the start for every target that is not Ready, then every
// RefreshInterval while an app is still not at the wanted revision and
// Argo CD has consumed the previous request (it removes the annotation).
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
	if s.Operation == "Running" || s.Operation == "Terminating" {
		reasons = append(reasons, "sync "+strings.ToLower(s.Operation))
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
	busy := s.Operation == "Running" || s.Operation == "Terminating"
	s.Failed = atRevision && s.Health == "Degraded" && s.Sync == string(v1alpha1.SyncStatusCodeSynced) &&
		!busy && a.DeletionTimestamp == nil
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
		if s.Operation != "" && s.Operation != "Succeeded" {
			fmt.Fprintf(w, "  last sync %s: %s\n", s.Operation, oneLine(s.OpMessage))
		}
		for _, r := range s.Unhealthy {
			fmt.Fprintf(w, "  resource %s\n", r)
		}
	}
}
