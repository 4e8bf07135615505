package infra

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const (
	gitopsDir = "infra/gitops"
	// inClusterServer is the only destination string Argo CD knows for its
	// own cluster (GITOPS-007): it matches servers as exact strings.
	inClusterServer = "https://kubernetes.default.svc"
	argocdNamespace = "argocd"
	rootAppName     = "root"
	createNamespace = "CreateNamespace=true"
)

func TestStrictDecodingRejectsMisspelledField(t *testing.T) {
	data, err := os.ReadFile("testdata/misspelled-selfheal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = decodeStrict(doc{file: "testdata/misspelled-selfheal.yaml", line: 1, data: data})
	if err == nil || !strings.Contains(err.Error(), "selfheal") {
		t.Fatalf("decoding an Application with `selfheal:` gave %v, want an unknown-field error naming selfheal", err)
	}
	// The same document spelled correctly decodes, so the error above is
	// about the typo and nothing else.
	fixed := strings.Replace(string(data), "selfheal:", "selfHeal:", 1)
	obj, err := decodeStrict(doc{file: "fixed", line: 1, data: []byte(fixed)})
	if err != nil {
		t.Fatalf("correctly spelled document: %v", err)
	}
	if app := obj.(*v1alpha1.Application); !app.Spec.SyncPolicy.Automated.SelfHeal {
		t.Fatal("selfHeal: true did not decode to SyncPolicy.Automated.SelfHeal")
	}
}

func TestSplitDocumentsKeepsLineNumbers(t *testing.T) {
	in := "# comment only\n---\na: 1\n---\n\n---\nb: 2\nc: 3\n"
	docs := splitDocuments("f.yaml", []byte(in))
	if len(docs) != 2 || docs[0].line != 3 || docs[1].line != 7 || string(docs[1].data) != "b: 2\nc: 3\n" {
		t.Fatalf("got %+v", docs)
	}
}

func TestGitopsHoldsTheExpectedObjects(t *testing.T) {
	objs := loadGitops(t, gitopsDir)
	var apps []string
	for _, a := range objs.apps {
		apps = append(apps, a.Name)
	}
	wantApps := []string{"backend-dev", "backend-prod", "frontend-dev", "frontend-prod", rootAppName}
	if !slices.Equal(apps, wantApps) {
		t.Errorf("Applications = %v, want %v", apps, wantApps)
	}
	for _, p := range []string{"platform", "shop"} {
		if objs.projects[p] == nil {
			t.Errorf("AppProject %q is missing", p)
		}
	}
	for obj, where := range objs.where {
		if obj.GetNamespace() != argocdNamespace {
			t.Errorf("%s: %s has metadata.namespace %q; Argo CD only watches %q for these objects", where, obj.GetName(), obj.GetNamespace(), argocdNamespace)
		}
	}
}

func TestApplicationsTargetInClusterExactly(t *testing.T) {
	objs := loadGitops(t, gitopsDir)
	for _, app := range objs.apps {
		dst := app.Spec.Destination
		if dst.Server != inClusterServer || dst.Name != "" {
			t.Errorf("%s: %s destination server=%q name=%q, want server exactly %q and no name (GITOPS-007)", objs.where[app], app.Name, dst.Server, dst.Name, inClusterServer)
		}
		if dst.Namespace == "" {
			t.Errorf("%s: %s has no destination namespace", objs.where[app], app.Name)
		}
	}
}

func TestApplicationsSyncPolicy(t *testing.T) {
	objs := loadGitops(t, gitopsDir)
	for _, app := range objs.apps {
		at := objs.where[app] + ": " + app.Name
		sp := app.Spec.SyncPolicy
		if sp == nil || !sp.IsAutomatedSyncEnabled() {
			t.Errorf("%s: automated sync is off", at)
			continue
		}
		if !sp.Automated.Prune || !sp.Automated.SelfHeal {
			t.Errorf("%s: automated prune=%v selfHeal=%v, want both true", at, sp.Automated.Prune, sp.Automated.SelfHeal)
		}
		if r := sp.Retry; r == nil || r.Limit <= 0 || r.Backoff == nil || r.Backoff.Duration == "" || r.Backoff.MaxDuration == "" {
			t.Errorf("%s: retry must set a limit and a backoff (duration, factor, maxDuration), got %+v", at, r)
		} else if !r.Refresh {
			// Without refresh every retry re-syncs the commit that failed,
			// and no automated sync of a later commit (the fix) can start
			// until the retries run out: minutes with this backoff.
			t.Errorf("%s: retry.refresh is not true: a fix merged after a failing sync would wait for every retry of the broken commit", at)
		}
		if !app.IsFinalizerPresent(v1alpha1.ResourcesFinalizerName) {
			t.Errorf("%s: finalizer %s missing: deleting the app would orphan its resources", at, v1alpha1.ResourcesFinalizerName)
		}
		// Workload namespaces are created by Argo CD; argocd always exists.
		if app.Spec.Destination.Namespace != argocdNamespace && !sp.SyncOptions.HasOption(createNamespace) {
			t.Errorf("%s: syncOptions lack %s for namespace %s", at, createNamespace, app.Spec.Destination.Namespace)
		}
	}
}

// Apps that create the same namespace race to create it. With client-side
// apply (get, then create) the loser's first sync fails with "already
// exists" and waits out a retry; seen in the lab's controller log. A
// server-side apply patch creates or updates and cannot lose.
func TestAppsSharingANamespaceCreateItServerSide(t *testing.T) {
	objs := loadGitops(t, gitopsDir)
	creators := map[string][]*v1alpha1.Application{}
	for _, app := range objs.apps {
		if sp := app.Spec.SyncPolicy; sp != nil && sp.SyncOptions.HasOption(createNamespace) {
			creators[app.Spec.Destination.Namespace] = append(creators[app.Spec.Destination.Namespace], app)
		}
	}
	shared := 0
	for ns, apps := range creators {
		if len(apps) < 2 {
			continue
		}
		shared++
		for _, app := range apps {
			if !app.Spec.SyncPolicy.SyncOptions.HasOption("ServerSideApply=true") {
				t.Errorf("%s: %s shares namespace %s with %d other apps that create it, but lacks ServerSideApply=true", objs.where[app], app.Name, ns, len(apps)-1)
			}
		}
	}
	if shared == 0 {
		t.Error("no two apps share a namespace: this test checks nothing (each environment has a frontend and a backend)")
	}
}

func TestApplicationSourcesExistInThisRepo(t *testing.T) {
	cfg := loadConfig(t)
	objs := loadGitops(t, gitopsDir)
	for _, app := range objs.apps {
		at := objs.where[app] + ": " + app.Name
		if app.Spec.HasMultipleSources() {
			t.Errorf("%s: uses spec.sources; this repo's apps have one source", at)
			continue
		}
		src := app.Spec.GetSource()
		if src.RepoURL != cfg.RepoURL {
			t.Errorf("%s: repoURL %q, want tug.yaml's %q", at, src.RepoURL, cfg.RepoURL)
		}
		if src.TargetRevision != "main" {
			t.Errorf("%s: targetRevision %q, want main (deploy what is merged)", at, src.TargetRevision)
		}
		dir := filepath.Join(repoRoot, filepath.FromSlash(src.Path))
		if src.Path == "" || path.IsAbs(src.Path) || strings.HasPrefix(path.Clean(src.Path), "..") {
			t.Errorf("%s: path %q must be a relative path inside the repo", at, src.Path)
			continue
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Errorf("%s: source path %s is not a folder in this repo", at, src.Path)
			continue
		}
		if src.Helm == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err != nil {
			t.Errorf("%s: has helm settings but %s/Chart.yaml is missing", at, src.Path)
		}
		if src.Helm.ReleaseName == "" {
			t.Errorf("%s: helm.releaseName is empty; the release name would become the app name", at)
		}
		for _, vf := range src.Helm.ValueFiles {
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(vf))); err != nil {
				t.Errorf("%s: valueFiles entry %s not found in %s", at, vf, src.Path)
			}
		}
	}
}

// Each service (the component of an Application <svc>-<env>) exists once per
// environment of tug.yaml, in namespace shop-<env>, with values-<env>.yaml.
func TestEveryServiceHasEveryEnvironment(t *testing.T) {
	cfg := loadConfig(t)
	objs := loadGitops(t, gitopsDir)
	byName := map[string]*v1alpha1.Application{}
	services := map[string]bool{}
	for _, app := range objs.apps {
		if app.Spec.Project != "shop" {
			continue
		}
		byName[app.Name] = app
		svc, _, ok := strings.Cut(app.Name, "-")
		if !ok {
			t.Errorf("%s: shop Application %q is not named <service>-<environment>", objs.where[app], app.Name)
		}
		services[svc] = true
	}
	if len(services) == 0 {
		t.Fatal("no Applications in project shop")
	}
	for svc := range services {
		for _, env := range cfg.Environments {
			name := svc + "-" + env
			app := byName[name]
			if app == nil {
				t.Errorf("Application %s is missing (environment %s is in tug.yaml)", name, env)
				continue
			}
			src := app.Spec.GetSource()
			if got, want := app.Spec.Destination.Namespace, "shop-"+env; got != want {
				t.Errorf("%s: namespace %s, want %s", objs.where[app], got, want)
			}
			var release string
			var valueFiles []string
			if src.Helm != nil {
				release, valueFiles = src.Helm.ReleaseName, src.Helm.ValueFiles
			}
			if src.Path != "charts/"+svc || release != svc || !slices.Equal(valueFiles, []string{"values-" + env + ".yaml"}) {
				t.Errorf("%s: want path charts/%s, releaseName %s, valueFiles [values-%s.yaml]; got path %s, releaseName %q, valueFiles %v",
					objs.where[app], svc, svc, env, src.Path, release, valueFiles)
			}
		}
	}
}

// The projects allow exactly what the Applications need, asked through
// Argo CD's own permission checks.
func TestProjectsPermitTheirApplications(t *testing.T) {
	cfg := loadConfig(t)
	objs := loadGitops(t, gitopsDir)
	inCluster := &v1alpha1.Cluster{Name: "in-cluster", Server: inClusterServer}
	noProjectClusters := func(string) ([]*v1alpha1.Cluster, error) { return nil, nil }
	for _, app := range objs.apps {
		at := objs.where[app] + ": " + app.Name
		proj := objs.projects[app.Spec.Project]
		if proj == nil {
			t.Errorf("%s: project %q is not defined under %s", at, app.Spec.Project, gitopsDir)
			continue
		}
		if !proj.IsSourcePermitted(app.Spec.GetSource()) {
			t.Errorf("%s: project %s does not permit repo %s", at, proj.Name, app.Spec.GetSource().RepoURL)
		}
		ok, err := proj.IsDestinationPermitted(inCluster, app.Spec.Destination.Namespace, noProjectClusters)
		if err != nil || !ok {
			t.Errorf("%s: project %s does not permit %s namespace %s (%v)", at, proj.Name, inClusterServer, app.Spec.Destination.Namespace, err)
		}
		// Argo CD checks the auto-created Namespace against the project's
		// cluster resource whitelist like any other cluster-scoped object.
		if app.Spec.SyncPolicy != nil && app.Spec.SyncPolicy.SyncOptions.HasOption(createNamespace) &&
			!proj.IsGroupKindPermitted(schema.GroupKind{Kind: "Namespace"}, false) {
			t.Errorf("%s: uses %s but project %s does not whitelist Namespace", at, createNamespace, proj.Name)
		}
	}
	for name, proj := range objs.projects {
		if !slices.Equal(proj.Spec.SourceRepos, []string{cfg.RepoURL}) {
			t.Errorf("%s: project %s sourceRepos %v, want only tug.yaml's %s", objs.where[proj], name, proj.Spec.SourceRepos, cfg.RepoURL)
		}
		if len(proj.Spec.Roles) != 0 {
			t.Errorf("%s: project %s has roles; access is granted in argocd-rbac-cm only", objs.where[proj], name)
		}
	}
}

func TestShopProjectBoundaries(t *testing.T) {
	objs := loadGitops(t, gitopsDir)
	shop := objs.projects["shop"]
	if shop == nil {
		t.Fatal("AppProject shop missing")
	}
	var dests []string
	for _, d := range shop.Spec.Destinations {
		dests = append(dests, d.Server+" "+d.Namespace)
	}
	want := []string{inClusterServer + " shop-dev", inClusterServer + " shop-prod"}
	if !slices.Equal(dests, want) {
		t.Errorf("shop destinations %v, want %v", dests, want)
	}
	if got := shop.Spec.ClusterResourceWhitelist; len(got) != 1 || got[0] != (metav1.GroupKind{Group: "", Kind: "Namespace"}) {
		t.Errorf("shop clusterResourceWhitelist %v, want only core Namespace", got)
	}
	for _, gk := range []schema.GroupKind{{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, {Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}} {
		if shop.IsGroupKindPermitted(gk, false) {
			t.Errorf("shop permits cluster-scoped %s", gk)
		}
	}
	for _, gk := range []schema.GroupKind{{Kind: "ResourceQuota"}, {Kind: "LimitRange"}} {
		if shop.IsGroupKindPermitted(gk, true) {
			t.Errorf("shop permits %s: the platform's namespace guardrails must not be changed by app charts", gk.Kind)
		}
	}
	for _, gk := range []schema.GroupKind{{Group: "apps", Kind: "Deployment"}, {Kind: "Service"}, {Kind: "ConfigMap"}} {
		if !shop.IsGroupKindPermitted(gk, true) {
			t.Errorf("shop forbids %s, which the charts need", gk)
		}
	}
	if shop.Annotations["argocd.argoproj.io/sync-wave"] != "-1" {
		t.Errorf("shop needs sync-wave -1 so the root sync creates it before its Applications")
	}
}

func TestPlatformProjectOnlyManagesArgoCDObjects(t *testing.T) {
	objs := loadGitops(t, gitopsDir)
	p := objs.projects["platform"]
	if p == nil {
		t.Fatal("AppProject platform missing")
	}
	if len(p.Spec.Destinations) != 1 || p.Spec.Destinations[0].Server != inClusterServer || p.Spec.Destinations[0].Namespace != argocdNamespace {
		t.Errorf("platform destinations %+v, want only %s namespace %s", p.Spec.Destinations, inClusterServer, argocdNamespace)
	}
	for _, kind := range []string{"Application", "AppProject"} {
		if !p.IsGroupKindPermitted(schema.GroupKind{Group: "argoproj.io", Kind: kind}, true) {
			t.Errorf("platform must permit argoproj.io %s", kind)
		}
	}
	for _, gk := range []schema.GroupKind{{Group: "apps", Kind: "Deployment"}, {Kind: "Secret"}, {Group: "argoproj.io", Kind: "ApplicationSet"}} {
		if p.IsGroupKindPermitted(gk, true) {
			t.Errorf("platform permits namespaced %s; it may only create Applications and AppProjects", gk)
		}
	}
	if p.IsGroupKindPermitted(schema.GroupKind{Kind: "Namespace"}, false) || len(p.Spec.ClusterResourceWhitelist) != 0 {
		t.Errorf("platform permits cluster-scoped resources: %v", p.Spec.ClusterResourceWhitelist)
	}
}

// The root Application (app-of-apps) manages every other Argo CD object in
// the repo, and everything it manages is allowed by its own project.
func TestRootAppManagesAllApps(t *testing.T) {
	objs := loadGitops(t, gitopsDir)
	var root *v1alpha1.Application
	for _, app := range objs.apps {
		if app.Name == rootAppName {
			root = app
		}
	}
	if root == nil {
		t.Fatalf("Application %q missing", rootAppName)
	}
	src := root.Spec.GetSource()
	recurse := src.Directory != nil && src.Directory.Recurse
	managed := func(file string) bool {
		dir := path.Dir(file)
		return dir == src.Path || (recurse && strings.HasPrefix(dir, src.Path+"/"))
	}
	rootProject := objs.projects[root.Spec.Project]
	if rootProject == nil {
		t.Fatalf("root's project %q missing", root.Spec.Project)
	}
	inCluster := &v1alpha1.Cluster{Name: "in-cluster", Server: inClusterServer}
	for obj, file := range objs.files {
		isRootOrItsProject := obj == metav1.Object(root) || obj == metav1.Object(rootProject)
		switch {
		case isRootOrItsProject && managed(file):
			t.Errorf("%s: %s is under root's own path %s: a bad commit there could delete the root itself", objs.where[obj], obj.GetName(), src.Path)
		case !isRootOrItsProject && !managed(file):
			t.Errorf("%s: %s is not under root's path %s (recurse=%v), so nothing syncs it", objs.where[obj], obj.GetName(), src.Path, recurse)
		case !isRootOrItsProject:
			gk := schema.GroupKind{Group: "argoproj.io", Kind: kindOf(obj)}
			ok, err := rootProject.IsResourcePermitted(gk, obj.GetNamespace(), inCluster, func(string) ([]*v1alpha1.Cluster, error) { return nil, nil })
			if err != nil || !ok {
				t.Errorf("%s: project %s does not let root sync %s %s into namespace %s (%v)", objs.where[obj], rootProject.Name, gk.Kind, obj.GetName(), obj.GetNamespace(), err)
			}
		}
	}
}

func kindOf(obj metav1.Object) string {
	switch obj.(type) {
	case *v1alpha1.Application:
		return "Application"
	case *v1alpha1.AppProject:
		return "AppProject"
	}
	return ""
}
