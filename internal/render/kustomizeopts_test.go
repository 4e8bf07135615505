package render

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/tug-gitops/tug/internal/testrepo"
)

// TestKustomizeEditAndFiles: spec.source.kustomize fields are applied to
// the build as Argo CD's `kustomize edit` would, without touching the
// files, and the build reports every file it read.
func TestKustomizeEditAndFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"base/kustomization.yaml":    "resources: [cm.yaml]\n",
		"base/cm.yaml":               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n",
		"overlay/kustomization.yaml": "resources: [../base]\npatches:\n  - path: patch.yaml\n",
		"overlay/patch.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: c\n",
	}
	if err := testrepo.WriteFiles(dir, files); err != nil {
		t.Fatal(err)
	}
	b, err := KustomizeWith(filepath.Join(dir, "overlay"), KustomizeOptions{Edit: &KustomizeEdit{
		NamePrefix: "dev-", Namespace: "shop-dev", CommonLabels: map[string]string{"env": "dev"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Objects) != 1 {
		t.Fatalf("%d objects, want 1", len(b.Objects))
	}
	o := b.Objects[0]
	if o.GetName() != "dev-settings" || o.GetNamespace() != "shop-dev" || o.GetLabels()["env"] != "dev" {
		t.Errorf("edit not applied: name %q namespace %q labels %v", o.GetName(), o.GetNamespace(), o.GetLabels())
	}
	if v, _, _ := unstructuredString(o.Object, "data", "a"); v != "c" {
		t.Errorf("patch not applied: data.a = %q", v)
	}
	var rel []string
	for _, f := range b.Files {
		r, _ := filepath.Rel(dir, f)
		rel = append(rel, filepath.ToSlash(r))
	}
	sort.Strings(rel)
	want := []string{"base/cm.yaml", "base/kustomization.yaml", "overlay/kustomization.yaml", "overlay/patch.yaml"}
	if len(rel) != len(want) {
		t.Fatalf("files read %q, want %q", rel, want)
	}
	for i := range want {
		if rel[i] != want[i] {
			t.Errorf("files read %q, want %q", rel, want)
			break
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "overlay", "kustomization.yaml"))
	if err != nil || string(data) != files["overlay/kustomization.yaml"] {
		t.Errorf("the kustomization on disk changed: %q", data)
	}
	if refs := KustomizeRemoteRefs(filepath.Join(dir, "overlay")); len(refs) != 0 {
		t.Errorf("remote refs in a local build: %v", refs)
	}
}

func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	cur := any(obj)
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[f]
	}
	s, ok := cur.(string)
	return s, ok, nil
}
