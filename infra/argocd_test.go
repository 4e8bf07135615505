package infra

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/util/assets"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/rbac"
	"github.com/argoproj/gitops-engine/pkg/health"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tug-gitops/tug/internal/render"
)

const (
	argocdDir       = "argocd" // relative to this package
	vendoredInstall = "argocd/upstream/install.yaml"
	argoModule      = "github.com/argoproj/argo-cd/v3"
	appHealthKey    = "resource.customizations.health.argoproj.io_Application"
)

// The vendored install must be the module's own file, byte for byte, so the
// manifests we deploy are the release whose Go types we test against.
func TestVendoredInstallMatchesModule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", argoModule)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("module %s is not in the module cache (go list: %v); run `go mod download %s` to compare", argoModule, err, argoModule)
	}
	want, err := os.ReadFile(filepath.Join(dir, "manifests", "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(vendoredInstall)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("infra/%s differs from %s/manifests/install.yaml (%s); copy it again as infra/argocd/upstream/README.md says, and put local changes in patches",
			vendoredInstall, dir, firstDifference(got, want))
	}
}

func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < min(len(g), len(w)); i++ {
		if g[i] != w[i] {
			return fmt.Sprintf("first difference at line %d: vendored %q, module %q", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("vendored has %d lines, module %d", len(g), len(w))
}

// builtArgoCD is infra/argocd built once by kustomize, the way
// `kubectl apply -k` and `tug bootstrap` build it.
type builtArgoCD struct {
	objs []*unstructured.Unstructured
}

// buildOnce: the build reads a 1.4 MB install; the tests only read it.
var buildOnce = sync.OnceValues(func() ([]*unstructured.Unstructured, error) {
	return render.Kustomize(argocdDir)
})

func buildArgoCD(t *testing.T) builtArgoCD {
	t.Helper()
	objs, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return builtArgoCD{objs: objs}
}

func (b builtArgoCD) find(t *testing.T, kind, name string, into any) {
	t.Helper()
	for _, o := range b.objs {
		if o.GetKind() == kind && o.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
				t.Fatalf("%s %s: %v", kind, name, err)
			}
			return
		}
	}
	t.Fatalf("%s %s not in the kustomize build of infra/argocd", kind, name)
}

func (b builtArgoCD) configMap(t *testing.T, name string) corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	b.find(t, "ConfigMap", name, &cm)
	if cm.Namespace != "argocd" {
		t.Errorf("ConfigMap %s is in namespace %q, want argocd", name, cm.Namespace)
	}
	return cm
}

func TestArgoCDBuildIsTheUpstreamInstallPlusPatches(t *testing.T) {
	built := buildArgoCD(t)
	upstream, err := os.ReadFile(vendoredInstall)
	if err != nil {
		t.Fatal(err)
	}
	up, err := render.DecodeManifests(upstream)
	if err != nil {
		t.Fatal(err)
	}
	key := func(o *unstructured.Unstructured) string { return o.GetKind() + "/" + o.GetName() }
	var builtKeys, upKeys []string
	for _, o := range built.objs {
		builtKeys = append(builtKeys, key(o))
	}
	for _, o := range up {
		upKeys = append(upKeys, key(o))
	}
	// Patches change objects; they must not add any, and drop only the
	// CRD of the controller scaled to zero (patches/unused-controllers.yaml).
	const dropped = "CustomResourceDefinition/applicationsets.argoproj.io"
	upKeys = slices.DeleteFunc(upKeys, func(k string) bool { return k == dropped })
	sort.Strings(builtKeys)
	sort.Strings(upKeys)
	if !slices.Equal(builtKeys, upKeys) {
		t.Errorf("the build has %d objects, upstream %d besides %s: patches must only modify upstream objects", len(builtKeys), len(upKeys), dropped)
	}
	for _, o := range built.objs {
		if o.GetKind() == "Deployment" || o.GetKind() == "StatefulSet" || o.GetKind() == "ConfigMap" || o.GetKind() == "Service" {
			if o.GetNamespace() != "argocd" {
				t.Errorf("%s is in namespace %q, want argocd", key(o), o.GetNamespace())
			}
		}
	}
}

func TestArgoCDLoginIsRestricted(t *testing.T) {
	cm := buildArgoCD(t).configMap(t, "argocd-cm")
	want := map[string]string{
		"admin.enabled":           "false",
		"users.anonymous.enabled": "false",
		"accounts.operator":       "login",
		"accounts.deployer":       "apiKey",
		"exec.enabled":            "false",
	}
	for k, v := range want {
		if got, ok := cm.Data[k]; !ok || got != v {
			t.Errorf("argocd-cm %s = %q (set: %v), want %q", k, got, ok, v)
		}
	}
	if _, ok := cm.Data["url"]; ok {
		t.Errorf("argocd-cm sets url; it is per installation and left to the operator")
	}
	if d, err := time.ParseDuration(cm.Data["timeout.reconciliation"]); err != nil || d <= 0 || d > 2*time.Minute {
		t.Errorf("argocd-cm timeout.reconciliation = %q, want a duration up to the 2m default (%v)", cm.Data["timeout.reconciliation"], err)
	}
}

// The app-of-apps health check, run in Argo CD's own Lua VM: a parent must
// see a child Application's health, not a constant Healthy.
func TestArgoCDAppOfAppsHealthCheck(t *testing.T) {
	cm := buildArgoCD(t).configMap(t, "argocd-cm")
	script := cm.Data[appHealthKey]
	if script == "" {
		t.Fatalf("argocd-cm has no %s: a root app would not reflect its children's health", appHealthKey)
	}
	child := func(status map[string]any) *unstructured.Unstructured {
		obj := map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": map[string]any{"name": "frontend-prod"}}
		if status != nil {
			obj["status"] = status
		}
		return &unstructured.Unstructured{Object: obj}
	}
	cases := []struct {
		name   string
		status map[string]any
		want   health.HealthStatusCode
		msg    string
	}{
		{"no status yet", nil, health.HealthStatusProgressing, ""},
		{"healthy child", map[string]any{"health": map[string]any{"status": "Healthy"}}, health.HealthStatusHealthy, ""},
		{"degraded child", map[string]any{"health": map[string]any{"status": "Degraded", "message": "Deployment backend: 0/1 ready"}}, health.HealthStatusDegraded, "Deployment backend: 0/1 ready"},
		{"missing child resources", map[string]any{"health": map[string]any{"status": "Missing"}}, health.HealthStatusMissing, ""},
	}
	vm := lua.VM{}
	for _, c := range cases {
		got, err := vm.ExecuteHealthLua(child(c.status), script)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got.Status != c.want || got.Message != c.msg {
			t.Errorf("%s: health %s %q, want %s %q", c.name, got.Status, got.Message, c.want, c.msg)
		}
	}
}

// RBAC, checked with Argo CD's own enforcer (casbin model and built-in
// policy) fed the built argocd-rbac-cm, the way argocd-server loads it.
func TestArgoCDRBAC(t *testing.T) {
	cm := buildArgoCD(t).configMap(t, "argocd-rbac-cm")
	if v, ok := cm.Data[rbac.ConfigMapPolicyDefaultKey]; !ok || v != "" {
		t.Errorf("argocd-rbac-cm policy.default = %q (set: %v), want \"\" so authenticated users get nothing by default", v, ok)
	}
	if cm.Data[rbac.ConfigMapScopesKey] != "[groups]" {
		t.Errorf("argocd-rbac-cm scopes = %q, want [groups]", cm.Data[rbac.ConfigMapScopesKey])
	}
	policy := rbac.PolicyCSV(cm.Data)
	if err := rbac.ValidatePolicy(policy); err != nil {
		t.Fatal(err)
	}
	enf := rbac.NewEnforcer(nil, "argocd", "argocd-rbac-cm", nil)
	if err := enf.SetBuiltinPolicy(assets.BuiltinPolicyCSV); err != nil {
		t.Fatal(err)
	}
	enf.SetDefaultRole(cm.Data[rbac.ConfigMapPolicyDefaultKey])
	enf.SetMatchMode(cm.Data[rbac.ConfigMapMatchModeKey])
	if err := enf.SetUserPolicy(policy); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		sub, resource, action, object string
		allow                         bool
	}{
		{"operator", "applications", "get", "platform/root", true},
		{"operator", "applications", "get", "shop/backend-prod", true},
		{"operator", "applications", "sync", "shop/backend-prod", true},
		{"operator", "applications", "sync", "platform/root", false},
		{"operator", "applications", "delete", "shop/backend-prod", false},
		{"operator", "applications", "update", "shop/backend-prod", false},
		{"operator", "projects", "get", "shop", true},
		{"operator", "projects", "update", "shop", false},
		{"operator", "clusters", "get", "https://kubernetes.default.svc", true},
		{"operator", "repositories", "get", "https://github.com/tug-gitops/tug.git", true},
		{"operator", "logs", "get", "shop/frontend-dev", true},
		{"operator", "exec", "create", "shop/frontend-dev", false},
		{"operator", "accounts", "update", "deployer", false},
		{"deployer", "applications", "get", "shop/frontend-prod", true},
		{"deployer", "applications", "sync", "shop/frontend-prod", true},
		{"deployer", "applications", "get", "platform/root", false},
		{"deployer", "applications", "sync", "platform/root", false},
		{"deployer", "applications", "delete", "shop/frontend-prod", false},
		{"deployer", "projects", "get", "shop", false},
		{"deployer", "clusters", "get", "https://kubernetes.default.svc", false},
		{"someone-else", "applications", "get", "shop/frontend-prod", false},
		{"", "applications", "get", "shop/frontend-prod", false},
	}
	for _, c := range cases {
		if got := enf.Enforce(c.sub, c.resource, c.action, c.object); got != c.allow {
			t.Errorf("%q %s %s %s: allowed=%v, want %v", c.sub, c.action, c.resource, c.object, got, c.allow)
		}
	}
}

// Every argocd-cmd-params-cm key we set must be read by some upstream
// Deployment or StatefulSet (configMapKeyRef); a misspelled or retired key
// would otherwise be ignored without a word.
func TestArgoCDCmdParamsAreReadByUpstream(t *testing.T) {
	built := buildArgoCD(t)
	cm := built.configMap(t, "argocd-cmd-params-cm")
	readers := map[string][]string{} // key -> workloads
	for _, o := range built.objs {
		var podSpec *corev1.PodSpec
		switch o.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			built.find(t, "Deployment", o.GetName(), &d)
			podSpec = &d.Spec.Template.Spec
		case "StatefulSet":
			var s appsv1.StatefulSet
			built.find(t, "StatefulSet", o.GetName(), &s)
			podSpec = &s.Spec.Template.Spec
		default:
			continue
		}
		for _, c := range slices.Concat(podSpec.InitContainers, podSpec.Containers) {
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.ConfigMapKeyRef != nil && r.ConfigMapKeyRef.Name == cm.Name {
					readers[r.ConfigMapKeyRef.Key] = append(readers[r.ConfigMapKeyRef.Key], o.GetName())
				}
			}
		}
	}
	if len(readers) == 0 {
		t.Fatal("no workload reads argocd-cmd-params-cm: the scan is broken")
	}
	if len(cm.Data) == 0 {
		t.Fatal("argocd-cmd-params-cm is empty: the hardening patch did not apply")
	}
	for k := range cm.Data {
		if len(readers[k]) == 0 {
			t.Errorf("argocd-cmd-params-cm key %q is read by no upstream workload; see docs/operator-manual/argocd-cmd-params-cm.yaml for valid keys", k)
		}
	}
	for k, v := range map[string]string{"server.insecure": "false", "server.disable.auth": "false", "reposerver.disable.tls": "false"} {
		if cm.Data[k] != v {
			t.Errorf("argocd-cmd-params-cm %s = %q, want %q", k, cm.Data[k], v)
		}
	}
}

func TestArgoCDServerLoginLimits(t *testing.T) {
	var d appsv1.Deployment
	buildArgoCD(t).find(t, "Deployment", "argocd-server", &d)
	env := map[string]string{}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "argocd-server" {
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
		}
	}
	if len(env) < 10 {
		t.Fatalf("argocd-server has %d env vars: the login patch replaced upstream's env list instead of merging", len(env))
	}
	for k, v := range map[string]string{
		"ARGOCD_SESSION_FAILURE_MAX_FAIL_COUNT":      "5",
		"ARGOCD_SESSION_FAILURE_WINDOW_SECONDS":      "300",
		"ARGOCD_SESSION_MAX_CACHE_SIZE":              "10000",
		"ARGOCD_MAX_CONCURRENT_LOGIN_REQUESTS_COUNT": "50",
	} {
		if env[k] != v {
			t.Errorf("argocd-server env %s = %q, want %q", k, env[k], v)
		}
	}
}

// The controllers this installation does not use are scaled to zero; the
// ones the app of apps needs keep upstream's replicas.
func TestArgoCDRunsOnlyWhatIsUsed(t *testing.T) {
	built := buildArgoCD(t)
	stopped := map[string]bool{"argocd-applicationset-controller": true, "argocd-dex-server": true, "argocd-notifications-controller": true}
	for _, o := range built.objs {
		if o.GetKind() != "Deployment" && o.GetKind() != "StatefulSet" {
			continue
		}
		replicas, set, err := unstructured.NestedInt64(o.Object, "spec", "replicas")
		if err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		zero := set && replicas == 0
		if zero != stopped[o.GetName()] {
			t.Errorf("%s %s: replicas %d (set: %t); want zero only for %v", o.GetKind(), o.GetName(), replicas, set, slices.Sorted(maps.Keys(stopped)))
		}
		delete(stopped, o.GetName())
	}
	if len(stopped) != 0 {
		t.Errorf("the build has no workload %v: upstream renamed it?", slices.Sorted(maps.Keys(stopped)))
	}
}
