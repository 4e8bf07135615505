package appstatus

import (
	"bytes"
	"strings"
	"testing"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/gitops-engine/pkg/health"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	repo   = "https://github.com/tug-gitops/tug.git"
	shaNew = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	shaOld = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func app(name, sync, hlth, rev string, children ...string) v1alpha1.Application {
	a := v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "argocd"},
		Spec: v1alpha1.ApplicationSpec{
			Project: "shop",
			Source:  &v1alpha1.ApplicationSource{RepoURL: repo, Path: "x", TargetRevision: "main"},
		},
		Status: v1alpha1.ApplicationStatus{
			Sync:   v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCode(sync), Revision: rev},
			Health: v1alpha1.AppHealthStatus{Status: health.HealthStatusCode(hlth)},
		},
	}
	for _, c := range children {
		a.Status.Resources = append(a.Status.Resources, v1alpha1.ResourceStatus{Group: "argoproj.io", Kind: "Application", Namespace: "argocd", Name: c, Status: "Synced"})
	}
	return a
}

func names(apps []*App) []string {
	var out []string
	for _, a := range apps {
		out = append(out, a.Name)
	}
	return out
}

func TestTreePutsChildrenUnderTheirRoot(t *testing.T) {
	apps := []v1alpha1.Application{
		app("backend-dev", "Synced", "Healthy", shaNew),
		app("root", "Synced", "Healthy", shaNew, "backend-dev", "frontend-dev", "frontend-prod"),
		app("frontend-dev", "OutOfSync", "Degraded", shaOld),
		app("standalone", "Synced", "Healthy", shaNew),
	}
	trees := Tree(apps)
	if got := strings.Join(names(trees), ","); got != "root,standalone" {
		t.Fatalf("top level = %s, want root,standalone", got)
	}
	root := trees[0]
	if got := strings.Join(names(root.Children), ","); got != "backend-dev,frontend-dev,frontend-prod" {
		t.Errorf("children = %s", got)
	}
	if fp := root.Children[2]; fp.Health != "Missing" {
		t.Errorf("child listed by root but absent: health = %s, want Missing", fp.Health)
	}
	if got := len(Flatten(trees)); got != 5 {
		t.Errorf("Flatten = %d apps, want 5", got)
	}
}

func TestTreeSurvivesCycles(t *testing.T) {
	apps := []v1alpha1.Application{app("a", "Synced", "Healthy", "", "b"), app("b", "Synced", "Healthy", "", "a")}
	flat := Flatten(Tree(apps))
	if len(flat) != 2 {
		t.Errorf("cycle: got %v", names(flat))
	}
}

func TestSummarizeCarriesConditionsAndUnhealthyResources(t *testing.T) {
	a := app("backend-dev", "Unknown", "Unknown", "")
	a.Status.Conditions = []v1alpha1.ApplicationCondition{{Type: "InvalidSpecError", Message: `cluster "https://kubernetes.default.svc:443" not found`}}
	a.Status.Resources = []v1alpha1.ResourceStatus{
		{Kind: "Deployment", Namespace: "shop-dev", Name: "backend", Status: "Synced", Health: &v1alpha1.HealthStatus{Status: "Degraded", Message: "deadline exceeded"}},
		{Kind: "Service", Namespace: "shop-dev", Name: "backend", Status: "Synced", Health: &v1alpha1.HealthStatus{Status: "Healthy"}},
		{Kind: "ConfigMap", Namespace: "shop-dev", Name: "c", Status: "OutOfSync"},
	}
	s := Summarize(&a)
	if len(s.Conditions) != 1 || !strings.Contains(s.Conditions[0].Message, ":443") {
		t.Errorf("conditions = %+v", s.Conditions)
	}
	if len(s.Unhealthy) != 2 || s.Unhealthy[0].Name != "backend" || s.Unhealthy[1].Kind != "ConfigMap" {
		t.Errorf("unhealthy = %+v", s.Unhealthy)
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, Tree([]v1alpha1.Application{a})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "InvalidSpecError: cluster") {
		t.Errorf("table lacks the condition:\n%s", buf.String())
	}
	// The condition's length must not widen the NAME column.
	if header := strings.SplitN(buf.String(), "\n", 2)[0]; strings.Index(header, "SYNC") > len(a.Name)+4 {
		t.Errorf("NAME column widened by the condition line:\n%s", buf.String())
	}
}

func TestRevisionMatches(t *testing.T) {
	for _, c := range []struct {
		have, want string
		ok         bool
	}{
		{shaNew, shaNew, true},
		{shaNew, shaNew[:7], true},
		{shaNew, strings.ToUpper(shaNew[:10]), true},
		{shaNew, shaNew[:6], false}, // too short to be a SHA prefix
		{shaNew, shaOld, false},
		{"", shaNew, false},
		{"", "", false},
		{"0.2.0", "0.2.0", true}, // chart version
		{"0.2.0-rc1", "0.2.0", false},
	} {
		if got := RevisionMatches(c.have, c.want); got != c.ok {
			t.Errorf("RevisionMatches(%q, %q) = %v, want %v", c.have, c.want, got, c.ok)
		}
	}
}

func TestAtRevisionMultiSourceChecksOnlyTheWantedRepo(t *testing.T) {
	a := app("backend-prod", "Synced", "Healthy", "")
	a.Spec.Source = nil
	a.Spec.Sources = v1alpha1.ApplicationSources{
		{RepoURL: "https://charts.example.com", Chart: "redis", TargetRevision: "18.0.0"},
		{RepoURL: repo, Ref: "values"},
	}
	a.Status.Sync.Revisions = []string{"18.0.0", shaOld}
	repos := map[string]bool{NormalizeRepoURL(repo): true}
	if ok, why := AtRevision(&a, shaNew, repos); ok || !strings.Contains(why, "at 2222222, want 1111111") {
		t.Errorf("old git source: ok=%v why=%q", ok, why)
	}
	a.Status.Sync.Revisions[1] = shaNew
	if ok, why := AtRevision(&a, shaNew, repos); !ok {
		t.Errorf("git source at revision, chart elsewhere: not accepted (%s)", why)
	}
	if ok, _ := AtRevision(&a, shaNew, nil); ok {
		t.Error("all repos: the chart's version should not match a commit")
	}
}

func TestEvaluateRootWaitsForEveryChildAtTheRevision(t *testing.T) {
	apps := []v1alpha1.Application{
		app("root", "Synced", "Healthy", shaNew, "backend-dev", "frontend-dev"),
		app("backend-dev", "Synced", "Healthy", shaNew),
		app("frontend-dev", "Synced", "Healthy", shaOld),
		app("unrelated", "OutOfSync", "Degraded", shaOld),
	}
	states := Evaluate(apps, WaitOptions{Apps: []string{"root"}, Revision: shaNew[:7]})
	byName := map[string]State{}
	for _, s := range states {
		byName[s.Name] = s
	}
	if len(states) != 3 {
		t.Fatalf("targets = %d, want root and its two children only", len(states))
	}
	if !byName["root"].Ready || !byName["backend-dev"].Ready {
		t.Errorf("ready apps judged not ready: %+v", states)
	}
	fd := byName["frontend-dev"]
	if fd.Ready || fd.Parent != "root" || !strings.Contains(fd.Reason, "at 2222222") {
		t.Errorf("frontend-dev = %+v, want not ready: at old revision", fd)
	}
	if allReady(states) {
		t.Error("allReady with a stale child")
	}
	apps[2].Status.Sync.Revision = shaNew
	if !allReady(Evaluate(apps, WaitOptions{Apps: []string{"root"}, Revision: shaNew})) {
		t.Error("not ready once every child is at the revision")
	}
}

func TestEvaluateDegradedFailsOnlyAtTheWantedRevision(t *testing.T) {
	apps := []v1alpha1.Application{app("backend-dev", "Synced", "Degraded", shaOld)}
	s := Evaluate(apps, WaitOptions{Apps: []string{"backend-dev"}, Revision: shaNew})
	if s[0].Failed {
		t.Error("Degraded at an old revision failed the wait; the new commit may fix it")
	}
	apps[0].Status.Sync.Revision = shaNew
	s = Evaluate(apps, WaitOptions{Apps: []string{"backend-dev"}, Revision: shaNew})
	if !s[0].Failed || failed(s) != ErrDegraded {
		t.Error("Degraded at the wanted revision did not fail")
	}
	// Still being worked on: a sync running, OutOfSync, or being deleted.
	apps[0].Status.OperationState = &v1alpha1.OperationState{Phase: "Running"}
	if s = Evaluate(apps, WaitOptions{Apps: []string{"backend-dev"}, Revision: shaNew}); s[0].Failed {
		t.Error("Degraded with a sync running failed the wait; the sync may heal it")
	}
	apps[0].Status.OperationState = nil
	apps[0].Status.Sync.Status = "OutOfSync"
	if s = Evaluate(apps, WaitOptions{Apps: []string{"backend-dev"}, Revision: shaNew}); s[0].Failed {
		t.Error("Degraded and OutOfSync failed the wait; automated sync may heal it")
	}
	apps[0].Status.Sync.Status = "Synced"
	now := metav1.Now()
	apps[0].DeletionTimestamp = &now
	if s = Evaluate(apps, WaitOptions{Apps: []string{"backend-dev"}, Revision: shaNew}); s[0].Failed {
		t.Error("a Degraded app being deleted failed the wait")
	}
}

func TestEvaluateMissingAndRunningAndErrors(t *testing.T) {
	running := app("a", "Synced", "Healthy", shaNew)
	running.Status.OperationState = &v1alpha1.OperationState{Phase: "Running"}
	invalid := app("b", "Unknown", "Unknown", "")
	invalid.Status.Conditions = []v1alpha1.ApplicationCondition{{Type: "InvalidSpecError", Message: "x"}}
	states := Evaluate([]v1alpha1.Application{running, invalid}, WaitOptions{Apps: []string{"a", "b", "c"}})
	if states[0].Ready || !strings.Contains(states[0].Reason, "Running") {
		t.Errorf("running sync: %+v", states[0])
	}
	if states[1].Ready || !strings.Contains(states[1].Reason, "InvalidSpecError") {
		t.Errorf("invalid spec: %+v", states[1])
	}
	if states[2].Ready || states[2].Reason != "Application not found" {
		t.Errorf("missing app: %+v", states[2])
	}
}

func TestEvaluateAllWithoutNames(t *testing.T) {
	apps := []v1alpha1.Application{app("root", "Synced", "Healthy", shaNew, "x"), app("x", "Synced", "Healthy", shaNew), app("y", "Synced", "Healthy", shaNew)}
	states := Evaluate(apps, WaitOptions{All: true, Revision: shaNew})
	if len(states) != 3 || !allReady(states) {
		t.Errorf("--all: %+v", states)
	}
	if allReady(nil) {
		t.Error("nothing to wait for counted as ready")
	}
}
