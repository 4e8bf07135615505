package diff

import (
	"strings"
	"testing"

	"github.com/tug-gitops/tug/internal/repo"
)

func TestLoaderViewBlanksOnlyWhatTheLoaderDrops(t *testing.T) {
	in := `# leading comment
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: applications.argoproj.io}
spec:
  names: {kind: Application}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: keep-me, namespace: argocd}
spec:
  project: default
  destination: {server: https://kubernetes.default.svc, namespace: x}
--- # a comment on the marker
apiVersion: apps/v1
kind: "Deployment" # quoted, commented
metadata: {name: web}
---
{apiVersion: v1, kind: Service, metadata: {name: flow}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cm}
data: {kustomize.buildOptions: --enable-helm}
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: p, namespace: argocd}
spec: {}
`
	out, changed := loaderView("install.yaml", []byte(in))
	if !changed {
		t.Fatal("nothing blanked")
	}
	if got, want := strings.Count(string(out), "\n"), strings.Count(in, "\n"); got != want {
		t.Fatalf("%d lines, want %d (line numbers must stay)", got, want)
	}
	for _, gone := range []string{"CustomResourceDefinition", "Deployment", "leading comment"} {
		if strings.Contains(string(out), gone) {
			t.Errorf("%s kept:\n%s", gone, out)
		}
	}
	for _, kept := range []string{"keep-me", "# a comment on the marker", "kind: Service", "argocd-cm", "kind: AppProject"} {
		if !strings.Contains(string(out), kept) {
			t.Errorf("%q blanked:\n%s", kept, out)
		}
	}
	// What the loader finds in the view is what it finds in the file,
	// at the same lines.
	full, view := &repo.Repo{ArgoCDConfig: map[string]string{}}, &repo.Repo{ArgoCDConfig: map[string]string{}}
	full.ParseFile("install.yaml", []byte(in))
	view.ParseFile("install.yaml", out)
	if len(full.Applications) != 1 || len(view.Applications) != 1 || full.Applications[0].Pos != view.Applications[0].Pos {
		t.Fatalf("applications: file %v, view %v", full.Applications, view.Applications)
	}
	if len(view.Projects) != 1 || view.Projects[0].Pos != full.Projects[0].Pos || view.ArgoCDConfig["kustomize.buildOptions"] != "--enable-helm" {
		t.Fatalf("projects %v, config %v", view.Projects, view.ArgoCDConfig)
	}
}

func TestLoaderViewKeepsWhatItCannotTell(t *testing.T) {
	for name, in := range map[string]string{
		"no kind":        "image: {tag: 1.0.0}\nreplicas: 2\n",
		"two kinds":      "kind: Deployment\nkind: Application\n",
		"on its marker":  "--- !!map\nkind: Deployment\n",
		"not YAML":       "kind: Deployment\n",
		"an Application": "apiVersion: argoproj.io/v1alpha1\nkind: Application\n",
	} {
		file := "f.yaml"
		if name == "not YAML" {
			file = "f.json"
		}
		if out, changed := loaderView(file, []byte(in)); changed || string(out) != in {
			t.Errorf("%s: changed to %q", name, out)
		}
	}
}
