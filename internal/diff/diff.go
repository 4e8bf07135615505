// Package diff shows what a change to a GitOps repository does to every
// Argo CD Application: it renders each Application (declared and
// ApplicationSet-generated) at two revisions, pairs them by name, and
// compares the rendered resources as Argo CD would (its normalization, its
// Secret masking), with a unified diff per changed resource. No cluster and
// no network: revisions are read from git objects, never checked out over
// the user's files. Promotion pull requests use the same code.
package diff

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Change says what happened to an Application or a resource.
type Change string

const (
	Added   Change = "added"
	Removed Change = "removed"
	Changed Change = "changed"
	// Affected: no rendered resource changed, but something the
	// Application depends on did (its AppProject).
	Affected Change = "affected"
)

// Revision names one side of the comparison.
type Revision struct {
	// Ref is what the user asked for ("origin/main", "HEAD~1"), or
	// "working tree".
	Ref string `json:"ref"`
	// Commit is the resolved commit; empty for the working tree.
	Commit string `json:"commit,omitempty"`
}

func (r Revision) String() string {
	if r.Commit == "" || r.Ref == r.Commit {
		return r.Ref
	}
	return fmt.Sprintf("%s (%.10s)", r.Ref, r.Commit)
}

// Result is the comparison of two revisions.
type Result struct {
	Base Revision `json:"base"`
	Head Revision `json:"head"`
	// ChangedFiles are the repository files that differ.
	ChangedFiles []string `json:"changedFiles"`
	// Apps are the Applications with a change, by name.
	Apps []*AppDiff `json:"applications"`
	// Unchanged counts Applications rendered the same at both revisions.
	Unchanged int `json:"unchanged"`
	// Problems are load problems at the head revision (e.g. a file that no
	// longer parses), which can hide Applications from the diff.
	Problems []string `json:"problems,omitempty"`
}

// Empty reports no change in any Application.
func (r *Result) Empty() bool { return len(r.Apps) == 0 }

// AppDiff is what changes for one Application.
type AppDiff struct {
	Name    string `json:"name"`
	Env     string `json:"environment,omitempty"`
	Project string `json:"project,omitempty"`
	Change  Change `json:"change"`
	// Resources that were added, removed or changed, sorted.
	Resources []*ResourceDiff `json:"resources,omitempty"`
	// Outside lists the changed files that affect this Application but
	// are not its own: files other Applications read too (a shared values
	// file, the chart's templates), or its AppProject's file.
	Outside        []string `json:"outside,omitempty"`
	ProjectChanged bool     `json:"projectChanged,omitempty"`
	// Error is a render failure at the head revision (BaseError at the base).
	Error     string   `json:"error,omitempty"`
	BaseError string   `json:"baseError,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

// Counts returns how many resources were added, changed and removed.
func (a *AppDiff) Counts() (added, changed, removed int) {
	for _, r := range a.Resources {
		switch r.Change {
		case Added:
			added++
		case Changed:
			changed++
		case Removed:
			removed++
		}
	}
	return
}

// ResourceDiff is one resource's change with the unified diff of its
// rendered YAML (Secret values masked).
type ResourceDiff struct {
	ResourceKey
	Change Change `json:"change"`
	Diff   string `json:"diff"`
}

// Compare pairs the Applications of two snapshots by name. changedFiles
// (repo-relative) decide which Applications were affected by a change
// outside their own files.
func Compare(base, head *Snapshot, changedFiles []string) (*Result, error) {
	if changedFiles == nil {
		changedFiles = []string{}
	}
	res := &Result{ChangedFiles: changedFiles, Apps: []*AppDiff{}, Problems: head.Problems}
	for _, name := range unionNames(base.Apps, head.Apps) {
		b, h := base.Apps[name], head.Apps[name]
		ad, err := compareApp(name, b, h)
		if err != nil {
			return nil, err
		}
		one := h
		if one == nil {
			one = b
		}
		if pf := head.projectFiles[one.Project]; base.projects[one.Project] != head.projects[one.Project] {
			ad.ProjectChanged = true
			if pf == "" {
				pf = base.projectFiles[one.Project]
			}
			ad.Outside = append(ad.Outside, pf)
			if ad.Change == "" {
				ad.Change = Affected
			}
		}
		if ad.Change == "" {
			res.Unchanged++
			continue
		}
		ad.Outside = append(ad.Outside, outsideFiles(name, b, h, base, head, changedFiles)...)
		ad.Outside = uniqueSorted(ad.Outside)
		res.Apps = append(res.Apps, ad)
	}
	return res, nil
}

// CompareApp compares one Application rendered twice (either may be nil:
// added or removed). The result's Change is "" when nothing differs.
func CompareApp(base, head *RenderedApp) (*AppDiff, error) {
	one := head
	if one == nil {
		one = base
	}
	return compareApp(one.Name, base, head)
}

func compareApp(name string, b, h *RenderedApp) (*AppDiff, error) {
	ad := &AppDiff{Name: name}
	var bObjs, hObjs map[ResourceKey]*unstructured.Unstructured
	switch {
	case b == nil:
		ad.Change, ad.Env, ad.Project, ad.Error, ad.Notes = Added, h.Env, h.Project, h.Err, h.Notes
		hObjs = h.Objects
	case h == nil:
		ad.Change, ad.Env, ad.Project, ad.BaseError = Removed, b.Env, b.Project, b.Err
		bObjs = b.Objects
	default:
		ad.Env, ad.Project, ad.Error, ad.BaseError, ad.Notes = h.Env, h.Project, h.Err, b.Err, h.Notes
		if h.from == b {
			return ad, nil // the head took the base's render: nothing differs
		}
		bObjs, hObjs = b.Objects, h.Objects
		if b.Err != h.Err {
			ad.Change = Changed
		}
	}
	for _, k := range unionKeys(bObjs, hObjs) {
		rd, err := compareResource(k, bObjs[k], hObjs[k])
		if err != nil {
			return nil, fmt.Errorf("application %s: %w", name, err)
		}
		if rd != nil {
			ad.Resources = append(ad.Resources, rd)
			if ad.Change == "" {
				ad.Change = Changed
			}
		}
	}
	return ad, nil
}

func compareResource(k ResourceKey, b, h *unstructured.Unstructured) (*ResourceDiff, error) {
	b, h, err := hideSecrets(b, h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	bt, err := manifestYAML(b)
	if err != nil {
		return nil, err
	}
	ht, err := manifestYAML(h)
	if err != nil {
		return nil, err
	}
	if bt == ht {
		return nil, nil
	}
	rd := &ResourceDiff{ResourceKey: k, Change: Changed}
	switch {
	case b == nil:
		rd.Change = Added
	case h == nil:
		rd.Change = Removed
	}
	rd.Diff = Unified(bt, ht, "a/"+k.String(), "b/"+k.String())
	return rd, nil
}

// Unified is `diff -u` of two texts with three lines of context, or "" when
// they are equal (go-difflib, Python difflib's algorithm).
func Unified(a, b, nameA, nameB string) string {
	if a == b {
		return ""
	}
	out, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: nameA, ToFile: nameB, Context: 3,
	})
	if err != nil { // only a failing writer can fail, and a strings.Builder does not
		return fmt.Sprintf("(diff failed: %v)\n", err)
	}
	return out
}

// outsideFiles are the changed files this Application read (at either
// revision) that are not its own: its own are the file declaring it and
// files no other Application reads.
func outsideFiles(name string, b, h *RenderedApp, base, head *Snapshot, changed []string) []string {
	var out []string
	for _, f := range changed {
		if !(b != nil && b.reads(f) || h != nil && h.reads(f)) {
			continue
		}
		if (b != nil && f == b.DeclaredIn) || (h != nil && f == h.DeclaredIn) {
			continue
		}
		if sharedWith(name, f, base, head) {
			out = append(out, f)
		}
	}
	return out
}

// sharedWith reports whether an Application other than name reads file.
func sharedWith(name, file string, snaps ...*Snapshot) bool {
	for _, s := range snaps {
		for n, a := range s.Apps {
			if n != name && a.reads(file) {
				return true
			}
		}
	}
	return false
}

func unionNames(a, b map[string]*RenderedApp) []string {
	seen := map[string]bool{}
	for n := range a {
		seen[n] = true
	}
	for n := range b {
		seen[n] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func unionKeys(a, b map[ResourceKey]*unstructured.Unstructured) []ResourceKey {
	seen := map[ResourceKey]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	out := make([]ResourceKey, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sortKeys(out)
	return out
}

func uniqueSorted(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if v != "" && (i == 0 || v != s[i-1]) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Unified is the Application's resource diffs as one unified diff text.
func (a *AppDiff) Unified() string {
	var b strings.Builder
	for _, r := range a.Resources {
		b.WriteString(r.Diff)
	}
	return b.String()
}
