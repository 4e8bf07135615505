package render

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Building from kustomize's resource maps gives exactly the objects its
// JSON output decodes to: on the real Argo CD install, and on a
// kustomization with the values where the two could part (a timestamp, big
// and negative numbers, floats, nulls).
func TestKustomizeObjectsEqualItsYAMLOutput(t *testing.T) {
	fs := filesys.MakeFsInMemory()
	files := map[string]string{
		"/k/kustomization.yaml": "resources: [cm.yaml]\n",
		"/k/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: odd, annotations: {when: 2001-12-14}}
data: {a: "1"}
binaryData: {}
extra:
  when: 2001-12-14t21:59:43.10-05:00
  big: 9223372036854775807
  neg: -3
  float: 1.5
  none: null
  list: [1, "two", 3.0, true]
`,
	}
	for p, c := range files {
		if err := fs.WriteFile(p, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		fs  filesys.FileSystem
		dir string
	}{{filesys.MakeFsOnDisk(), "../../infra/argocd"}, {fs, "/k"}} {
		got, err := KustomizeFS(tc.fs, tc.dir)
		if err != nil {
			t.Fatal(err)
		}
		resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(tc.fs, tc.dir)
		if err != nil {
			t.Fatal(err)
		}
		// The canonical form: each resource's JSON decoded as client-go
		// decodes an object (integers as int64).
		var want []*unstructured.Unstructured
		for _, r := range resMap.Resources() {
			data, err := r.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(data); err != nil {
				t.Fatal(err)
			}
			want = append(want, u)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d objects, YAML output has %d", tc.dir, len(got), len(want))
		}
		for i := range got {
			if !reflect.DeepEqual(got[i].Object, want[i].Object) {
				t.Errorf("%s: object %d (%s) differs at %s", tc.dir, i, got[i].GetName(), firstDifference("", got[i].Object, want[i].Object))
			}
		}
	}
}

// firstDifference names the first path where a and b differ, with the Go
// types (an int64 and a float64 print alike).
func firstDifference(path string, a, b any) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return fmt.Sprintf("%s: %T(%d keys) vs %T", path, a, len(x), b)
		}
		for k := range x {
			if d := firstDifference(path+"."+k, x[k], y[k]); d != "" {
				return d
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return fmt.Sprintf("%s: %T vs %T", path, a, b)
		}
		for i := range x {
			if d := firstDifference(fmt.Sprintf("%s[%d]", path, i), x[i], y[i]); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Sprintf("%s: %T(%v) vs %T(%v)", path, a, a, b, b)
	}
	return ""
}

// A key YAML reads as an integer is an error kustomize itself reports
// (as it did before), never a panic.
func TestKustomizeIntegerKeyIsAnError(t *testing.T) {
	fs := filesys.MakeFsInMemory()
	_ = fs.WriteFile("/k/kustomization.yaml", []byte("resources: [cm.yaml]\n"))
	_ = fs.WriteFile("/k/cm.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: n}\ndata:\n  1: one\n"))
	if _, err := KustomizeFS(fs, "/k"); err == nil || !strings.Contains(err.Error(), "ConfigMap") {
		t.Fatalf("err = %v, want one naming the ConfigMap", err)
	}
}
