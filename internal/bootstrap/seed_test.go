package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/argoproj/argo-cd/v3/util/argo"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The real tree: root deploys infra/gitops/apps, whose shop project is
// seeded, pointed at the forge, and marked as root's exactly as Argo CD's
// own code would mark it.
func TestSeedProjectsOfTheRealTree(t *testing.T) {
	const forge = "http://127.0.0.1:3000/tug/tug.git"
	root, err := RenderRoot(repoRoot(t), forge)
	if err != nil {
		t.Fatal(err)
	}
	install, err := Render(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	seeds, err := SeedProjects(repoRoot(t), forge, root, install)
	if err != nil {
		t.Fatal(err)
	}
	if len(seeds) != 1 || seeds[0].GetName() != "shop" || seeds[0].GetNamespace() != Namespace {
		t.Fatalf("seeds = %v", names(seeds))
	}
	shop := seeds[0]
	want := argo.NewResourceTracking().BuildAppInstanceValue(argo.UnstructuredToAppInstanceValue(shop, "root", Namespace))
	if got := shop.GetAnnotations()[TrackingAnnotation]; got != want {
		t.Errorf("tracking id %q, Argo CD's is %q", got, want)
	}
	if repos, _, _ := unstructured.NestedStringSlice(shop.Object, "spec", "sourceRepos"); len(repos) != 1 || repos[0] != forge {
		t.Errorf("sourceRepos = %v, want the forge", repos)
	}
	if wave := shop.GetAnnotations()["argocd.argoproj.io/sync-wave"]; wave != "-1" {
		t.Errorf("the project lost its sync wave (%q): a project added later still needs it", wave)
	}
}

// Seeding is skipped whenever Argo CD would not see the seed as the root's
// own, or the source is not a plain directory of this repository.
func TestSeedProjectsOnlyInTheSimpleCase(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"apps/project.yaml":     "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: p}\n",
		"apps/app.yaml":         "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\n",
		"apps/notes.txt":        "kind: AppProject\n",
		"apps/nested/deep.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: deep}\n",
	})
	app := func(source map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
			"metadata": map[string]any{"name": "root"},
			"spec":     map[string]any{"source": source, "destination": map[string]any{"namespace": "argocd"}},
		}}
	}
	cm := func(data map[string]any) []*unstructured.Unstructured {
		return []*unstructured.Unstructured{{Object: map[string]any{"kind": "ConfigMap", "metadata": map[string]any{"name": "argocd-cm"}, "data": data}}}
	}
	for _, tc := range []struct {
		name    string
		source  map[string]any
		install []*unstructured.Unstructured
		want    []string
	}{
		{"plain directory", map[string]any{"path": "apps"}, nil, []string{"argocd/p"}},
		{"recurse", map[string]any{"path": "apps", "directory": map[string]any{"recurse": true}}, nil, []string{"argocd/deep", "argocd/p"}},
		{"include glob", map[string]any{"path": "apps", "directory": map[string]any{"include": "*.yaml"}}, nil, nil},
		{"helm", map[string]any{"path": "apps", "helm": map[string]any{}}, nil, nil},
		{"escaping path", map[string]any{"path": "../x"}, nil, nil},
		{"label tracking", map[string]any{"path": "apps"}, cm(map[string]any{"application.resourceTrackingMethod": "label"}), nil},
		{"installation id", map[string]any{"path": "apps"}, cm(map[string]any{"installationID": "x"}), nil},
		{"annotation tracking said out loud", map[string]any{"path": "apps"}, cm(map[string]any{"application.resourceTrackingMethod": "annotation"}), []string{"argocd/p"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seeds, err := SeedProjects(dir, "", []*unstructured.Unstructured{app(tc.source)}, tc.install)
			if err != nil {
				t.Fatal(err)
			}
			got := names(seeds)
			if len(got) != len(tc.want) {
				t.Fatalf("seeds %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("seeds %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestSeedProjectsReportsBrokenYAMLWithItsFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"apps/bad.yaml": "kind: [\n"})
	root := []*unstructured.Unstructured{{Object: map[string]any{
		"kind": "Application", "metadata": map[string]any{"name": "root"},
		"spec": map[string]any{"source": map[string]any{"path": "apps"}},
	}}}
	_, err := SeedProjects(dir, "", root, nil)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "apps", "bad.yaml")) {
		t.Fatalf("err = %v, want one naming the file", err)
	}
}

func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetNamespace()+"/"+o.GetName())
	}
	return out
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
