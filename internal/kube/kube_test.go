package kube

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func obj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}}
	if ns != "" {
		u.SetNamespace(ns)
	}
	return u
}

func refs(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, Ref(o))
	}
	return out
}

func TestOrderPutsCRDsThenNamespacesFirstKeepingInputOrder(t *testing.T) {
	in := []*unstructured.Unstructured{
		obj("v1", "ConfigMap", "argocd", "a"),
		obj("apps/v1", "Deployment", "argocd", "d"),
		obj("v1", "Namespace", "", "argocd"),
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "applications.argoproj.io"),
		obj("v1", "Secret", "argocd", "s"),
	}
	crds, rest := SplitCRDs(Order(in))
	if got, want := refs(crds), []string{"CustomResourceDefinition/applications.argoproj.io"}; !reflect.DeepEqual(got, want) {
		t.Errorf("crds = %v, want %v", got, want)
	}
	want := []string{"Namespace/argocd", "ConfigMap/argocd/a", "Deployment/argocd/d", "Secret/argocd/s"}
	if got := refs(rest); !reflect.DeepEqual(got, want) {
		t.Errorf("rest = %v, want %v", got, want)
	}
}

func TestCRDKindsReadsGroupAndKind(t *testing.T) {
	crd := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "applications.argoproj.io")
	_ = unstructured.SetNestedField(crd.Object, "argoproj.io", "spec", "group")
	_ = unstructured.SetNestedField(crd.Object, "Application", "spec", "names", "kind")
	got := CRDKinds([]*unstructured.Unstructured{crd})
	if !got[schema.GroupKind{Group: "argoproj.io", Kind: "Application"}] || len(got) != 1 {
		t.Errorf("CRDKinds = %v", got)
	}
}

func TestCRDEstablished(t *testing.T) {
	crd := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "x")
	if CRDEstablished(crd) {
		t.Error("no status: reported Established")
	}
	_ = unstructured.SetNestedSlice(crd.Object, []any{
		map[string]any{"type": "NamesAccepted", "status": "True"},
		map[string]any{"type": "Established", "status": "False"},
	}, "status", "conditions")
	if CRDEstablished(crd) {
		t.Error("Established=False: reported Established")
	}
	_ = unstructured.SetNestedSlice(crd.Object, []any{map[string]any{"type": "Established", "status": "True"}}, "status", "conditions")
	if !CRDEstablished(crd) {
		t.Error("Established=True: not reported")
	}
}

func TestChangedPathsIgnoresServerBookkeeping(t *testing.T) {
	live := obj("apps/v1", "Deployment", "ns", "d")
	live.SetResourceVersion("1")
	_ = unstructured.SetNestedField(live.Object, int64(1), "spec", "replicas")
	_ = unstructured.SetNestedField(live.Object, int64(1), "status", "readyReplicas")
	same := live.DeepCopy()
	same.SetResourceVersion("2")
	_ = unstructured.SetNestedField(same.Object, int64(0), "status", "readyReplicas")
	if got := ChangedPaths(Comparable(live), Comparable(same)); len(got) != 0 {
		t.Errorf("bookkeeping-only change reported: %v", got)
	}
	changed := same.DeepCopy()
	_ = unstructured.SetNestedField(changed.Object, int64(2), "spec", "replicas")
	changed.SetLabels(map[string]string{"a": "b"})
	want := []string{"metadata.labels", "spec.replicas"}
	if got := ChangedPaths(Comparable(live), Comparable(changed)); !reflect.DeepEqual(got, want) {
		t.Errorf("ChangedPaths = %v, want %v", got, want)
	}
}

func TestApplyBodyDropsServerOwnedFields(t *testing.T) {
	o := obj("v1", "ConfigMap", "ns", "c")
	_ = unstructured.SetNestedField(o.Object, nil, "metadata", "creationTimestamp")
	o.SetResourceVersion("7")
	_ = unstructured.SetNestedField(o.Object, "x", "status", "phase")
	body := applyBody(o)
	md := body["metadata"].(map[string]any)
	if _, ok := md["creationTimestamp"]; ok {
		t.Error("creationTimestamp kept")
	}
	if _, ok := md["resourceVersion"]; ok {
		t.Error("resourceVersion kept")
	}
	if _, ok := body["status"]; ok {
		t.Error("status kept")
	}
	if o.GetResourceVersion() != "7" {
		t.Error("applyBody modified its input")
	}
}

const kubeconfigYAML = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: https://127.0.0.1:1111}
- name: b
  cluster: {server: https://127.0.0.1:2222}
users:
- name: u
  user: {token: t}
contexts:
- name: ca
  context: {cluster: a, user: u}
- name: cb
  context: {cluster: b, user: u}
current-context: ca
`

func TestRESTConfigHonoursExplicitPathAndContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfigYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", "/nonexistent")
	cfg, err := RESTConfig(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:1111" {
		t.Errorf("current context: host = %s", cfg.Host)
	}
	cfg, err = RESTConfig(path, "cb")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:2222" {
		t.Errorf("context cb: host = %s", cfg.Host)
	}
	if _, err := RESTConfig(path, "nope"); err == nil {
		t.Error("unknown context accepted")
	}
}
