package drift

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

func deployment(replicas any, images ...string) *unstructured.Unstructured {
	var containers []any
	for i, img := range images {
		containers = append(containers, map[string]any{"name": []string{"app", "sidecar"}[i], "image": img})
	}
	spec := map[string]any{"template": map[string]any{"spec": map[string]any{"containers": containers}}}
	if replicas != nil {
		spec["replicas"] = replicas
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "backend", "namespace": "shop-dev"},
		"spec":     spec,
	}}
}

func TestChooseTargets(t *testing.T) {
	app := &v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Name: "backend-dev"}}
	if _, err := ChooseTargets(app); err == nil || !strings.Contains(err.Error(), "no Deployment") {
		t.Errorf("no resources: err = %v", err)
	}
	app.Status.Resources = []v1alpha1.ResourceStatus{
		{Group: "", Kind: "Service", Namespace: "shop-dev", Name: "aaa-metrics"},
		{Group: "", Kind: "Service", Namespace: "shop-dev", Name: "backend"},
		{Group: "apps", Kind: "Deployment", Namespace: "shop-dev", Name: "backend"},
		{Group: "", Kind: "ConfigMap", Namespace: "shop-dev", Name: "backend"},
		{Group: "", Kind: "Service", Namespace: "other", Name: "x"},
	}
	tg, err := ChooseTargets(app)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Deployment != (Ref{"shop-dev", "backend"}) || tg.Service != (Ref{"shop-dev", "backend"}) {
		t.Errorf("targets = %+v, want the backend Deployment and its same-named Service", tg)
	}
}

func TestScalePlanAddsOneAndRecognisesHealing(t *testing.T) {
	for _, c := range []struct {
		replicas any
		from     int64
	}{{int64(2), 2}, {nil, 1}, {int64(0), 0}} {
		dep := deployment(c.replicas, "img:1")
		p := planScale(dep)
		if p.From != c.from || p.To != c.from+1 {
			t.Errorf("replicas %v: plan %d→%d", c.replicas, p.From, p.To)
		}
		drifted := apply(t, dep, p.Drift, false)
		if healedScale(p, drifted) {
			t.Errorf("replicas %v: drifted object counted as healed", c.replicas)
		}
		if !healedScale(p, apply(t, drifted, p.Undo, false)) {
			t.Errorf("replicas %v: undo does not heal", c.replicas)
		}
	}
}

func TestImagePlanChangesOnlyTheFirstContainer(t *testing.T) {
	dep := deployment(int64(1), "ghcr.io/tug-gitops/backend:0.2.0", "proxy:1")
	p, err := planImage(dep)
	if err != nil {
		t.Fatal(err)
	}
	if p.Container != "app" || p.To != "ghcr.io/tug-gitops/backend:0.2.0-tug-drift-check" {
		t.Errorf("plan = %+v", p)
	}
	drifted := apply(t, dep, p.Drift, true)
	if got := containerImage(drifted, "app"); got != p.To {
		t.Errorf("drifted image = %q", got)
	}
	if got := containerImage(drifted, "sidecar"); got != "proxy:1" {
		t.Errorf("sidecar image changed to %q: the strategic patch must merge containers by name", got)
	}
	if got := containerImage(apply(t, drifted, p.Undo, true), "app"); got != p.From {
		t.Errorf("undo: image = %q", got)
	}
	if _, err := planImage(deployment(nil)); err == nil {
		t.Error("Deployment without containers accepted")
	}
}

func TestRetag(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                         "nginx:latest-tug-drift-check",
		"localhost:5000/app":            "localhost:5000/app:latest-tug-drift-check",
		"localhost:5000/app:1.0":        "localhost:5000/app:1.0-tug-drift-check",
		"ghcr.io/o/app@sha256:abcd":     "ghcr.io/o/app:latest-tug-drift-check",
		"ghcr.io/o/app:1.0@sha256:abcd": "ghcr.io/o/app:1.0-tug-drift-check",
	} {
		if got := retag(in); got != want {
			t.Errorf("retag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRecreatableDropsServerFields(t *testing.T) {
	svc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "backend", "namespace": "shop-dev", "uid": "u", "resourceVersion": "9",
			"labels": map[string]any{"app.kubernetes.io/instance": "backend-dev"}},
		"spec":   map[string]any{"clusterIP": "10.0.0.7", "clusterIPs": []any{"10.0.0.7"}, "ports": []any{map[string]any{"port": int64(80)}}},
		"status": map[string]any{"loadBalancer": map[string]any{}},
	}}
	r := recreatable(svc)
	for _, path := range [][]string{{"metadata", "uid"}, {"metadata", "resourceVersion"}, {"spec", "clusterIP"}, {"spec", "clusterIPs"}, {"status"}} {
		if _, ok, _ := unstructured.NestedFieldNoCopy(r.Object, path...); ok {
			t.Errorf("%v kept", path)
		}
	}
	if r.GetLabels()["app.kubernetes.io/instance"] != "backend-dev" {
		t.Error("labels (Argo CD's tracking) lost")
	}
	if svc.GetUID() != "u" {
		t.Error("input modified")
	}
}

func TestPreconditionsRequireSelfHeal(t *testing.T) {
	app := &v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Name: "a"}}
	if err := Preconditions(app); err == nil || !strings.Contains(err.Error(), "selfHeal") {
		t.Errorf("no sync policy: %v", err)
	}
	app.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{Prune: true}}
	if err := Preconditions(app); err == nil {
		t.Error("selfHeal false accepted")
	}
	app.Spec.SyncPolicy.Automated.SelfHeal = true
	if err := Preconditions(app); err != nil {
		t.Error(err)
	}
	off := false
	app.Spec.SyncPolicy.Automated.Enabled = &off
	if err := Preconditions(app); err == nil {
		t.Error("automated.enabled=false accepted")
	}
}

func TestWriteTableMarksFailures(t *testing.T) {
	var buf bytes.Buffer
	_ = WriteTable(&buf, &Report{Checks: []Check{
		{Kind: Scale, Target: "Deployment/shop-dev/backend", Change: "replicas 1 → 2", Healed: true, Seconds: 0.8},
		{Kind: DeleteService, Target: "Service/shop-dev/backend", Change: "deleted", RestoredByTug: true},
	}})
	out := buf.String()
	if !strings.Contains(out, "0.80") || !strings.Contains(out, "NO (restored by tug)") {
		t.Errorf("table:\n%s", out)
	}
}

// apply applies a merge or strategic merge patch the way the API server
// does, with apimachinery's own patch code.
func apply(t *testing.T, obj *unstructured.Unstructured, patch []byte, strategic bool) *unstructured.Unstructured {
	t.Helper()
	orig, _ := json.Marshal(obj.Object)
	var out []byte
	var err error
	if strategic {
		out, err = strategicpatch.StrategicMergePatch(orig, patch, appsv1.Deployment{})
	} else {
		out, err = jsonpatch.MergePatch(orig, patch)
	}
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(out); err != nil { // int64 numbers, as the dynamic client decodes
		t.Fatal(err)
	}
	return u
}
