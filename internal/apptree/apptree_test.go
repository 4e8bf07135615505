package apptree

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/tug-gitops/tug/internal/repo"
)

func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestBuildFollowsRenderedChildren: a root renders a Helm chart whose
// template is an Application; the child is taken from the rendered output,
// rendered in turn, and the tree links them with their objects.
func TestBuildFollowsRenderedChildren(t *testing.T) {
	root := writeRepo(t, map[string]string{
		"tug.yaml": "repoURL: https://example.com/r.git\n",
		"root.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: root, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://example.com/r.git, path: chart}
  destination: {server: https://kubernetes.default.svc, namespace: argocd}
`,
		"chart/Chart.yaml":  "apiVersion: v2\nname: apps\nversion: 0.1.0\n",
		"chart/values.yaml": "child: web\n",
		"chart/templates/app.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: {{ .Values.child }}, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://example.com/r.git, path: manifests}
  destination: {server: https://kubernetes.default.svc, namespace: web}
`,
		"manifests/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
	})
	r, err := repo.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := Build(context.Background(), r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Problems) != 0 {
		t.Errorf("problems: %v", tree.Problems)
	}
	if len(tree.Roots) != 1 || tree.Roots[0].App.Name != "root" {
		t.Fatalf("roots %v, want root", tree.Roots)
	}
	var names []string
	for _, n := range tree.Nodes {
		names = append(names, n.App.Name)
	}
	sort.Strings(names)
	if len(names) != 2 || names[0] != "root" || names[1] != "web" {
		t.Fatalf("nodes %v, want root and web", names)
	}
	web := tree.Roots[0].Children[0]
	if web.Parent != tree.Roots[0] || web.Root != tree.Roots[0] || web.App.Pos.File != "chart/templates/app.yaml" {
		t.Errorf("child links/position wrong: parent %v root %v pos %v", web.Parent.App.Name, web.Root.App.Name, web.App.Pos)
	}
	if objs := web.Objects(); len(objs) != 1 || objs[0].GetName() != "web" {
		t.Errorf("child objects %v, want ConfigMap web", objs)
	}
	if !tree.Reached("manifests/cm.yaml") || tree.Reached("nowhere.yaml") {
		t.Errorf("Reached is wrong")
	}
}
