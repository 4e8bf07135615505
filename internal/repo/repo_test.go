package repo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const twoApps = `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: a
spec:
  project: default
  source: {repoURL: https://x/y.git, path: p}
  destination: {server: https://kubernetes.default.svc}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: b
spec:
  project: default
  source:
    repoURL: https://x/y.git
    path: charts/b
    helm:
      valueFiles: [values-prod.yaml]
  destination: {server: https://kubernetes.default.svc}
`

func TestLoadPositionsAndLookup(t *testing.T) {
	root := t.TempDir()
	write(t, root, "apps/apps.yaml", twoApps)
	write(t, root, "charts/b/Chart.yaml", "apiVersion: v2\nname: b\nversion: 0.1.0\n")
	write(t, root, "charts/b/templates/x.yaml", "kind: Application\napiVersion: argoproj.io/v1alpha1\n{{ broken")
	write(t, root, "testdata/bad.yaml", "kind: [")
	r, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 0 {
		t.Fatalf("templates and testdata must be skipped, got %+v", r.Problems)
	}
	b := r.Application("b")
	if b == nil || b.Pos.String() != "apps/apps.yaml:10:1" {
		t.Fatalf("application b: %+v", b)
	}
	if b.Spec.Source.Path != "charts/b" || b.Spec.Source.Helm.ValueFiles[0] != "values-prod.yaml" {
		t.Fatalf("source: %+v", b.Spec.Source)
	}
	if got := b.FieldPos("spec.source.helm.valueFiles[0]").String(); got != "apps/apps.yaml:20:20" {
		t.Fatalf("FieldPos: %s", got)
	}
	if r.Application("nope") != nil {
		t.Fatal("missing app must be nil")
	}
}

func TestLoadHostileFiles(t *testing.T) {
	root := t.TempDir()
	write(t, root, "ok.yaml", "a: 1\n")
	big := strings.Repeat("a: 1\n", MaxFileSize/5+10)
	write(t, root, "big.yaml", big)
	if err := os.Symlink("loop2.yaml", filepath.Join(root, "loop1.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop1.yaml", filepath.Join(root, "loop2.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(root, "self")); err != nil { // directory loop: not followed
		t.Fatal(err)
	}
	r, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range r.Problems {
		got[p.Pos.File] = p.Rule
	}
	want := map[string]string{"big.yaml": "parse.file", "loop1.yaml": "parse.file", "loop2.yaml": "parse.file"}
	for f, rule := range want {
		if got[f] != rule {
			t.Errorf("%s: want %s, got problems %+v", f, rule, r.Problems)
		}
	}
	if len(r.Problems) != len(want) {
		t.Errorf("unexpected problems: %+v", r.Problems)
	}
}
