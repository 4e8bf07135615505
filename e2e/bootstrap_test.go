package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/bootstrap"
	"github.com/tug-gitops/tug/internal/kube"
)

var appProjectsGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}

// productApps are the four Applications under root (infra/gitops/apps).
var productApps = []string{"frontend-dev", "frontend-prod", "backend-dev", "backend-prod"}

// GITOPS-003, GITOPS-005: after bootstrap the root and all four product
// Applications are Synced and Healthy at the forge's head commit.
func TestBootstrapAppsSyncedHealthyAtHead(t *testing.T) {
	head := forgeHead(t)
	t.Logf("forge head: %s", head)
	out := mustTugWait(t, 3*time.Minute, head, "root")
	t.Log(strings.TrimSpace(out))

	ctx := context.Background()
	apps, err := appstatus.List(ctx, dynamicClient(t), appstatus.DefaultNamespace)
	if err != nil {
		t.Fatal(err)
	}
	trees := appstatus.Tree(apps)
	var root *appstatus.App
	for _, a := range trees {
		if a.Name == "root" {
			root = a
		}
	}
	if root == nil {
		t.Fatalf("no root Application at the top of the tree:\n%s", mustJSON(trees))
	}
	children := map[string]*appstatus.App{}
	for _, c := range root.Children {
		children[c.Name] = c
	}
	for _, name := range append([]string{"root"}, productApps...) {
		a := root
		if name != "root" {
			if a = children[name]; a == nil {
				t.Errorf("%s is not a child of root (children: %v)", name, keys(children))
				continue
			}
		}
		if a.Sync != "Synced" || a.Health != "Healthy" || !appstatus.RevisionMatches(a.Revision, head) {
			t.Errorf("%s: %s/%s at %s, want Synced/Healthy at %s", name, a.Sync, a.Health, a.Revision, head)
		}
	}
}

// Bootstrap creates the shop project before root, already marked as root's,
// so root's first sync (ApplyOutOfSyncOnly) finds it Synced and has nothing
// in wave -1 to apply and then wait 2 s after: Argo CD never wrote to it.
func TestBootstrapSeededProjectIsRootsAndSynced(t *testing.T) {
	ctx := context.Background()
	dyn := dynamicClient(t)
	proj, err := dyn.Resource(appProjectsGVR).Namespace(bootstrap.Namespace).Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if id := proj.GetAnnotations()[bootstrap.TrackingAnnotation]; id != "root:argoproj.io/AppProject:argocd/shop" {
		t.Errorf("tracking id %q", id)
	}
	for _, mf := range proj.GetManagedFields() {
		if mf.Manager != kube.DefaultFieldManager {
			t.Errorf("%s wrote AppProject/shop (%s at %v): root's first sync applied it, so it waited out a sync wave", mf.Manager, mf.Operation, mf.Time)
		}
	}
	root, err := application(ctx, t, "root")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range root.Status.Resources {
		if r.Kind == "AppProject" && r.Name == "shop" {
			found = true
			if r.Status != "Synced" {
				t.Errorf("root sees AppProject/shop as %s", r.Status)
			}
		}
	}
	if !found {
		t.Errorf("AppProject/shop is not among root's resources: %s", mustJSON(root.Status.Resources))
	}
}

// Running `tug bootstrap` again on a bootstrapped cluster changes nothing.
// The lab runs Argo CD's workloads as processes, so the re-run skips them
// (--skip-workloads) and points root at the forge (--repo-url), exactly
// what `tug lab up` itself asked of the bootstrap library.
func TestBootstrapTwiceChangesNothing(t *testing.T) {
	out, err := tugCmd(context.Background(), 3*time.Minute, "bootstrap", "--kubeconfig", env.kubeconfig,
		"--skip-workloads", "--repo-url", forgeRepoURL(t), "-o", "json")
	if err != nil {
		t.Fatalf("tug bootstrap (second run): %v\n%s", err, out)
	}
	rep := decodeBootstrapReport(t, out)
	var changed []string
	for _, r := range append(append([]kube.Result{}, rep.Install...), rep.Root...) {
		if r.Action != kube.Unchanged {
			changed = append(changed, fmt.Sprintf("%s %s %v", r.Action, r.Ref, r.Changes))
		}
	}
	if rep.InitialAdminDeleted {
		changed = append(changed, "deleted argocd-initial-admin-secret")
	}
	changed = append(changed, rep.Credentials...)
	if len(changed) > 0 {
		t.Errorf("the second tug bootstrap changed:\n  %s", strings.Join(changed, "\n  "))
	}
	if len(rep.Install) < 20 || len(rep.Root) != 3 {
		t.Errorf("report covers %d install and %d root objects; expected the whole install, root.yaml's 2 and the seeded shop project", len(rep.Install), len(rep.Root))
	}
	// The credentials in place still work: the operator logs in.
	if _, err := argoLogin(t, "operator", operatorPassword(t)); err != nil {
		t.Errorf("operator login after the second bootstrap: %v", err)
	}
}

// decodeBootstrapReport reads `tug bootstrap -o json` (the plan is on the
// same combined output, before the JSON object).
func decodeBootstrapReport(t *testing.T, out string) *bootstrap.Report {
	t.Helper()
	i := strings.Index(out, "\n{")
	if strings.HasPrefix(out, "{") {
		i = -1
	} else if i < 0 {
		t.Fatalf("no JSON report in tug bootstrap's output:\n%s", out)
	}
	var rep bootstrap.Report
	if err := json.NewDecoder(strings.NewReader(out[i+1:])).Decode(&rep); err != nil {
		t.Fatalf("decode tug bootstrap -o json: %v\n%s", err, out)
	}
	return &rep
}

// The real-cluster path: the whole pinned upstream install plus the
// hardening, built with the kustomize API exactly as `tug bootstrap` does
// on a cluster (no workload left out), is accepted by a v1.34 API server in
// a server-side dry run, and carries the hardening.
func TestBootstrapRealClusterInstallDryRun(t *testing.T) {
	objs, err := bootstrap.Render(env.repo)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	t.Logf("rendered %d objects: %v", len(objs), kinds)
	for _, k := range []string{"CustomResourceDefinition", "Deployment", "StatefulSet", "ConfigMap", "ClusterRole", "Service"} {
		if kinds[k] == 0 {
			t.Errorf("the rendered install has no %s: it is not the full upstream install", k)
		}
	}
	checkHardening(t, objs)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	results, err := kube.Apply(ctx, env.cfg, objs, kube.ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatalf("server-side dry run of the full install: %v", err)
	}
	actions := map[kube.Action]int{}
	for _, r := range results {
		actions[r.Action]++
	}
	t.Logf("server-side dry run: %v", actions)
	if len(results) != len(objs) || actions[kube.Pending] > 0 {
		t.Errorf("dry run checked %d of %d objects (%d pending): every object must be checked by the server", len(results)-actions[kube.Pending], len(objs), actions[kube.Pending])
	}
	// The workloads the lab runs as processes would be created on a cluster.
	for _, r := range results {
		if strings.HasPrefix(r.Ref, "Deployment/") && r.Action != kube.Created {
			t.Errorf("%s: %s, want created (the lab has no Argo CD Deployments)", r.Ref, r.Action)
		}
	}
	// And the same through the command a user runs against a real cluster.
	// The lab marks itself, so the workloads are asked for explicitly.
	out, err := tugCmd(context.Background(), 3*time.Minute, "bootstrap", "--kubeconfig", env.kubeconfig,
		"--dry-run", "--skip-workloads=false", "--repo-url", forgeRepoURL(t), "-o", "json")
	if err != nil {
		t.Fatalf("tug bootstrap --dry-run: %v\n%s", err, out)
	}
	rep := decodeBootstrapReport(t, out)
	if !rep.DryRun || len(rep.Install) < len(objs) {
		t.Errorf("tug bootstrap --dry-run report: dryRun %v, %d install objects (want ≥ %d)", rep.DryRun, len(rep.Install), len(objs))
	}
}

// checkHardening asserts what infra/argocd/patches promise is in the
// rendered objects.
func checkHardening(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	want := map[string]map[string]string{
		"argocd-cm": {
			"admin.enabled":           "false",
			"users.anonymous.enabled": "false",
			"accounts.operator":       "login",
			"accounts.deployer":       "apiKey",
			"exec.enabled":            "false",
		},
		"argocd-rbac-cm": {"policy.default": ""},
		"argocd-cmd-params-cm": {
			"server.insecure":                  "false",
			"server.disable.auth":              "false",
			"reposerver.disable.tls":           "false",
			"controller.repo.server.plaintext": "false",
		},
	}
	found := map[string]bool{}
	for _, o := range objs {
		keys, ok := want[o.GetName()]
		if o.GetKind() != "ConfigMap" || !ok {
			continue
		}
		found[o.GetName()] = true
		data, _, _ := unstructured.NestedStringMap(o.Object, "data")
		for k, v := range keys {
			if got, ok := data[k]; !ok || got != v {
				t.Errorf("ConfigMap %s: %s = %q (set: %v), want %q", o.GetName(), k, got, ok, v)
			}
		}
		if o.GetName() == "argocd-rbac-cm" && !strings.Contains(data["policy.csv"], "g, deployer, role:deployer") {
			t.Errorf("argocd-rbac-cm policy.csv lacks the deployer's role")
		}
	}
	for name := range want {
		if !found[name] {
			t.Errorf("no ConfigMap %s in the rendered install", name)
		}
	}
	// The login limits are set on argocd-server's container.
	limits := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetName() != "argocd-server" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			envs, _, _ := unstructured.NestedSlice(c.(map[string]any), "env")
			for _, e := range envs {
				if n, _ := e.(map[string]any)["name"].(string); strings.HasPrefix(n, "ARGOCD_SESSION_FAILURE_") {
					limits[n] = true
				}
			}
		}
	}
	if !limits["ARGOCD_SESSION_FAILURE_MAX_FAIL_COUNT"] || !limits["ARGOCD_SESSION_FAILURE_WINDOW_SECONDS"] {
		t.Errorf("argocd-server lacks the login failure limits: %v", limits)
	}
	for _, o := range objs {
		if o.GetKind() == "Secret" && o.GetName() == bootstrap.InitialAdminSecret {
			t.Errorf("the install ships %s", bootstrap.InitialAdminSecret)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
