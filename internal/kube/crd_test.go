package kube

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

func crdObject(name string, conditions ...map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": name},
	}}
	if len(conditions) > 0 {
		list := make([]any, len(conditions))
		for i, c := range conditions {
			list[i] = c
		}
		_ = unstructured.SetNestedSlice(u.Object, list, "status", "conditions")
	}
	return u
}

func fakeClient(objs ...runtime.Object) *Client {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{crdGVR: "CustomResourceDefinitionList"}, objs...)
	return &Client{Dynamic: dyn}
}

// The wait ends when the last CRD turns Established (seen by the watch, not
// a poll), and ignores the other CRDs' events.
func TestWaitCRDsEstablishedFollowsTheWatch(t *testing.T) {
	c := fakeClient(crdObject("a.x.io"), crdObject("b.x.io", map[string]any{"type": "Established", "status": "True"}), crdObject("other.x.io"))
	done := make(chan error, 1)
	go func() {
		done <- c.WaitCRDsEstablished(context.Background(), []string{"a.x.io", "b.x.io"}, 10*time.Second)
	}()
	select {
	case err := <-done:
		t.Fatalf("returned before a.x.io was Established: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	established := crdObject("a.x.io", map[string]any{"type": "Established", "status": "True"})
	if _, err := c.Dynamic.Resource(crdGVR).Update(context.Background(), established, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting after a.x.io became Established")
	}
}

// On timeout the error names each CRD still waiting and what it reported.
func TestWaitCRDsEstablishedTimeoutSaysWhy(t *testing.T) {
	c := fakeClient(crdObject("a.x.io", map[string]any{"type": "NamesAccepted", "status": "False", "message": "plural name taken"}))
	err := c.WaitCRDsEstablished(context.Background(), []string{"a.x.io", "missing.x.io"}, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "a.x.io (NamesAccepted=False: plural name taken)") || !strings.Contains(err.Error(), "missing.x.io (not created yet)") {
		t.Fatalf("err = %v", err)
	}
}

func TestServedResourcesListsEachServedVersion(t *testing.T) {
	crd := func(scope string, versions ...map[string]any) *unstructured.Unstructured {
		vs := make([]any, len(versions))
		for i, v := range versions {
			vs[i] = v
		}
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": "widgets.example.com"},
			"spec": map[string]any{
				"group": "example.com", "scope": scope,
				"names":    map[string]any{"plural": "widgets", "kind": "Widget"},
				"versions": vs,
			},
		}}
	}
	got := servedResources([]*unstructured.Unstructured{
		crd("Namespaced", map[string]any{"name": "v1", "served": true}, map[string]any{"name": "v1beta1", "served": false}),
		crd("Cluster", map[string]any{"name": "v2", "served": true}),
	})
	want := []servedResource{
		{schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}, "default"},
		{schema.GroupVersionResource{Group: "example.com", Version: "v2", Resource: "widgets"}, ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("servedResources = %+v, want %+v", got, want)
	}
}
