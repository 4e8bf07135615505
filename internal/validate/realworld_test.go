package validate

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/apptree"
	"github.com/tug-gitops/tug/internal/render"
	"github.com/tug-gitops/tug/internal/repo"
	"github.com/tug-gitops/tug/internal/tools"
)

// realWorld copies a fixture repository from testdata/real into a temporary
// directory, as a newcomer's checkout: no tug.yaml, and when the fixture
// has an ORIGIN file, a git repository whose origin remote is that URL.
func realWorld(t testing.TB, name string, edit func(root string)) string {
	t.Helper()
	src := filepath.Join("testdata", "real", name)
	root := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(root, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if origin, err := os.ReadFile(filepath.Join(root, "ORIGIN")); err == nil {
		for _, args := range [][]string{{"init", "-q"}, {"remote", "add", "origin", strings.TrimSpace(string(origin))}} {
			if out, err := exec.Command("git", append([]string{"-C", root}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
		}
	}
	if edit != nil {
		edit(root)
	}
	return root
}

func runRepo(t testing.TB, root string, roots ...string) *Result {
	t.Helper()
	r, err := repo.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), r, Options{Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// replaceIn edits one file of a fixture copy; the test fails if old is not
// there, so a seeded mistake can never silently not be seeded.
func replaceIn(t testing.TB, file, old, new string) func(string) {
	return func(root string) {
		p := filepath.Join(root, filepath.FromSlash(file))
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), old) {
			t.Fatalf("%s does not contain %q", file, old)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRealWorldClean: each real-world-shaped repository, validated as a
// newcomer would (no tug.yaml), has no error or warning, checks the
// Applications Argo CD would see and names its roots.
func TestRealWorldClean(t *testing.T) {
	for _, tc := range []struct {
		name      string
		wantApps  []string // Applications that must be checked
		wantRoots int
		wantInfo  []string // rule IDs that must be among the info findings
		wantURL   string
	}{
		{name: "helm-app-of-apps", wantRoots: 2,
			wantApps: []string{"apps-dev", "apps-prod", "web-dev", "api-dev", "web-prod", "api-prod"}},
		{name: "kustomize-appsets", wantRoots: 2,
			wantApps: []string{"appsets-dev", "web-dev", "api-dev", "legacy", "web-prod", "api-prod"}},
		{name: "autopilot", wantRoots: 1, wantInfo: []string{"source.remote"},
			wantApps: []string{"autopilot-bootstrap", "root", "argo-cd", "cluster-resources-in-cluster", "dev-guestbook", "prod-guestbook"}},
		{name: "cluster-generators", wantRoots: 1,
			wantApps: []string{"root", "platform-dev", "platform-prod", "metrics-in-cluster", "metrics-dev", "logging-prod"}},
		{name: "multisource-helm-repo", wantRoots: 3, wantInfo: []string{"source.remote"},
			wantApps: []string{"ingress-nginx", "cert-manager", "observability"}, wantURL: "https://github.com/acme/platform-config.git"},
		{name: "other-repos", wantRoots: 2, wantInfo: []string{"source.external"},
			wantApps: []string{"payments", "local"}, wantURL: "git@github.com:Acme/Deploy.git"},
		{name: "tools-templates", wantRoots: 1, wantInfo: []string{"parse.unreached"}, wantApps: []string{"app"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := realWorld(t, tc.name, nil)
			res := runRepo(t, root)
			infos := map[string]bool{}
			for _, f := range res.Findings {
				if f.Severity >= Warning {
					t.Errorf("false %s: %s (hint: %s)", f.Severity, f, f.Hint)
				} else {
					infos[f.Rule] = true
					t.Logf("info: %s", f)
				}
			}
			for _, rule := range tc.wantInfo {
				if !infos[rule] {
					t.Errorf("no %s info finding", rule)
				}
			}
			if len(res.Roots) != tc.wantRoots {
				t.Errorf("roots %q, want %d", res.Roots, tc.wantRoots)
			}
			if tc.wantURL != "" && res.RepoURL != tc.wantURL {
				t.Errorf("repository URL %q (%s), want %q", res.RepoURL, res.RepoURLSource, tc.wantURL)
			}
			checked := checkedApps(t, root)
			for _, a := range tc.wantApps {
				if !checked[a] {
					t.Errorf("Application %q was not checked; checked: %v", a, checked)
				}
			}
		})
	}
}

// checkedApps lists the Applications the tree validation checks holds.
func checkedApps(t testing.TB, root string) map[string]bool {
	t.Helper()
	r, err := repo.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := apptree.Build(context.Background(), r, apptree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range tree.Nodes {
		out[n.App.Name] = true
	}
	return out
}

// TestRealWorldSeeded: a mistake seeded into a real-world-shaped repository
// is caught with the right rule at the file and line that hold it (the
// values file, the generator's element file, the Kustomize patch), or, when
// the value is computed by a template, at the template.
func TestRealWorldSeeded(t *testing.T) {
	for _, tc := range []struct {
		name, fixture string
		edit          func(t testing.TB) func(string)
		rule, pos     string // pos is file:line (line 0: the file)
		msg           string // a part of the message
	}{
		{name: "helm values :443", fixture: "helm-app-of-apps",
			edit: func(t testing.TB) func(string) {
				return replaceIn(t, "charts/apps/values-dev.yaml", "server: https://kubernetes.default.svc", "server: https://kubernetes.default.svc:443")
			},
			rule: "destination.unknown-server", pos: "charts/apps/values-dev.yaml:3", msg: `"web-dev" (rendered from charts/apps/templates/applications.yaml by Application "apps-dev")`},
		{name: "helm child path missing", fixture: "helm-app-of-apps",
			edit: func(t testing.TB) func(string) {
				return replaceIn(t, "charts/apps/values.yaml", "- name: api", "- name: apii")
			},
			rule: "source.path-missing", pos: "charts/apps/templates/applications.yaml:0", msg: `"apii-prod"`},
		{name: "helm child misspelled field", fixture: "helm-app-of-apps",
			edit: func(t testing.TB) func(string) {
				return replaceIn(t, "charts/apps/templates/applications.yaml", "selfHeal: true", "selfheal: true")
			},
			rule: "parse.schema", pos: "charts/apps/templates/applications.yaml:0", msg: "selfheal"},
		{name: "kustomize patch :443", fixture: "kustomize-appsets",
			edit: func(t testing.TB) func(string) {
				return replaceIn(t, "appsets/overlays/dev/services-dev.yaml", "      destination:\n", "      destination:\n        server: https://kubernetes.default.svc:443\n")
			},
			rule: "destination.unknown-server", pos: "appsets/overlays/dev/services-dev.yaml:13", msg: `"web-dev" (generated by ApplicationSet "services-dev" for list element 0)`},
		{name: "autopilot config.json :443", fixture: "autopilot",
			edit: func(t testing.TB) func(string) {
				return replaceIn(t, "apps/guestbook/overlays/dev/config.json", `"https://kubernetes.default.svc"`, `"https://kubernetes.default.svc:443"`)
			},
			rule: "destination.unknown-server", pos: "apps/guestbook/overlays/dev/config.json:5", msg: "file apps/guestbook/overlays/dev/config.json"},
		{name: "autopilot config.json path", fixture: "autopilot",
			edit: func(t testing.TB) func(string) {
				return replaceIn(t, "apps/guestbook/overlays/prod/config.json", `"apps/guestbook/overlays/prod"`, `"apps/guestbook/overlay/prod"`)
			},
			rule: "source.path-missing", pos: "apps/guestbook/overlays/prod/config.json:6", msg: `"prod-guestbook"`},
		{name: "cluster label drives a missing path", fixture: "cluster-generators",
			edit: func(t testing.TB) func(string) {
				return replaceIn(t, "clusters/dev.yaml", "    env: dev\n", "    env: stg\n")
			},
			rule: "source.path-missing", pos: "appsets/platform.yaml:35", msg: "cluster dev (https://dev.k8s.acme.example.com)"},
		{name: "undeclared $ref", fixture: "multisource-helm-repo",
			edit: func(t testing.TB) func(string) {
				return replaceIn(t, "apps/ingress-nginx.yaml", "- $values/values/ingress-nginx/prod.yaml", "- $value/values/ingress-nginx/prod.yaml")
			},
			rule: "source.values-ref-unknown", pos: "apps/ingress-nginx.yaml:18", msg: `ref "value"`},
		{name: "missing $values file", fixture: "multisource-helm-repo",
			edit: func(t testing.TB) func(string) {
				return replaceIn(t, "apps/ingress-nginx.yaml", "ingress-nginx/prod.yaml", "ingress-nginx/prd.yaml")
			},
			rule: "source.values-missing", pos: "apps/ingress-nginx.yaml:18", msg: "values/ingress-nginx/prd.yaml"},
		{name: "local path typo next to other repos", fixture: "other-repos",
			edit: func(t testing.TB) func(string) {
				return replaceIn(t, "apps/local.yaml", "path: manifests/local", "path: manifests/locl")
			},
			rule: "source.path-missing", pos: "apps/local.yaml:12", msg: `"manifests/locl"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runRepo(t, realWorld(t, tc.fixture, tc.edit(t)))
			found := false
			for _, f := range res.Findings {
				if f.Rule == tc.rule && fmt.Sprintf("%s:%d", f.Pos.File, f.Pos.Line) == tc.pos && strings.Contains(f.Message, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("want %s at %s with %q; got:", tc.rule, tc.pos, tc.msg)
				for _, f := range res.Findings {
					t.Logf("  %s", f)
				}
			}
			if res.Count(Error) == 0 {
				t.Errorf("the seeded mistake does not fail validation")
			}
		})
	}
}

// TestNoRootFoundAndNamedRoot: a repository whose only Applications are
// inside a Helm chart nobody in the repository renders has no root; the
// summary says so and how to name one, and naming the root file that
// lives elsewhere (--root) checks the children the chart renders.
func TestNoRootFoundAndNamedRoot(t *testing.T) {
	root := realWorld(t, "helm-app-of-apps", func(root string) {
		if err := os.RemoveAll(filepath.Join(root, "envs")); err != nil {
			t.Fatal(err)
		}
	})
	res := runRepo(t, root)
	if res.Apps != 0 || len(res.Roots) != 0 {
		t.Fatalf("without a root: %d applications, roots %q; want none", res.Apps, res.Roots)
	}
	var text strings.Builder
	if err := WriteText(&text, res, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "roots: none found, so nothing was checked") || !strings.Contains(text.String(), "--root FILE") {
		t.Errorf("the summary does not say that no root was found and how to name one:\n%s", text.String())
	}

	outside := filepath.Join(t.TempDir(), "root.yaml")
	data, err := os.ReadFile(filepath.Join("testdata", "real", "helm-app-of-apps", "envs", "dev", "root.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outside, []byte(strings.Replace(string(data), "- values-dev.yaml", "- values-dve.yaml", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	res = runRepo(t, root, outside)
	if res.Apps != 1 || len(res.Roots) != 1 {
		t.Errorf("with --root: %d applications, roots %q; want the named root", res.Apps, res.Roots)
	}
	found := false
	for _, f := range res.Findings {
		found = found || f.Rule == "source.values-missing" && strings.Contains(f.Message, "values-dve.yaml")
	}
	if !found {
		t.Errorf("the named root's mistake was not reported: %v", res.Findings)
	}
	if err := os.WriteFile(outside, data, 0o644); err != nil {
		t.Fatal(err)
	}
	res = runRepo(t, root, outside)
	if res.Apps != 3 || res.Count(Warning) != 0 {
		t.Errorf("with a good --root: %d applications (want the root and its 2 children), findings %v", res.Apps, res.Findings)
	}
}

// TestKustomizeBuildOptionsFromArgoCDConfig: a kustomization that loads a
// file from outside its directory builds only with the
// --load-restrictor LoadRestrictionsNone that the repository's argocd-cm
// gives Argo CD; without it the same repository fails as Argo CD would.
func TestKustomizeBuildOptionsFromArgoCDConfig(t *testing.T) {
	files := map[string]string{
		"root.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://github.com/acme/k.git, path: overlays/dev}
  destination: {server: https://kubernetes.default.svc, namespace: web}
`,
		"overlays/dev/kustomization.yaml": "resources:\n  - ../../shared/cm.yaml\n",
		"shared/cm.yaml":                  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n",
	}
	argocdCM := `apiVersion: v1
kind: ConfigMap
metadata: {name: argocd-cm, namespace: argocd}
data:
  kustomize.buildOptions: --load-restrictor LoadRestrictionsNone
`
	for _, withCM := range []bool{false, true} {
		root := t.TempDir()
		for rel, content := range files {
			writeTestFile(t, root, rel, content)
		}
		if withCM {
			writeTestFile(t, root, "argocd/argocd-cm.yaml", argocdCM)
		}
		res := runRepo(t, root)
		failed := false
		for _, f := range res.Findings {
			failed = failed || f.Rule == "source.render-failed"
		}
		if failed == withCM {
			t.Errorf("with argocd-cm %v: render failed %v; findings %v", withCM, failed, res.Findings)
		}
	}
}

func writeTestFile(t testing.TB, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKustomizeHelmCharts: a kustomization inflating a chart vendored under
// its chartHome is built only with --enable-helm, as Argo CD builds it.
// Without the setting and with no argocd-cm in the repository it is info
// (not built, how to build it); with --enable-helm its output is checked (a
// misspelled field in the chart's template is caught, the overlay's patch
// applies); an argocd-cm in the repository that lacks --enable-helm is an
// error, and one that has it builds.
func TestKustomizeHelmCharts(t *testing.T) {
	ensureHelm(t)
	argocdCM := func(opts string) func(string) {
		return func(root string) {
			writeTestFile(t, root, "argocd/argocd-cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-cm, namespace: argocd}\ndata:\n  kustomize.buildOptions: "+opts+"\n")
		}
	}
	misspell := replaceIn(t, "base/charts/web/templates/deployment.yaml", "containerPort: 8080", "containerport: 8080")
	for _, tc := range []struct {
		name         string
		edit         func(string)
		buildOptions string
		wantRule     string // a finding that must be there ("" for none)
		wantErrors   int
	}{
		{name: "no argocd-cm, no flag", wantRule: "source.helm-charts"},
		{name: "--enable-helm", buildOptions: "--enable-helm"},
		{name: "--enable-helm, chart mistake", edit: misspell, buildOptions: "--enable-helm", wantRule: "manifest.schema", wantErrors: 1},
		{name: "argocd-cm without --enable-helm", edit: argocdCM("--load-restrictor LoadRestrictionsNone"), wantRule: "source.helm-charts-disabled", wantErrors: 1},
		{name: "argocd-cm with --enable-helm", edit: argocdCM("--enable-helm")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := realWorld(t, "kustomize-helm-charts", tc.edit)
			r, err := repo.Load(root)
			if err != nil {
				t.Fatal(err)
			}
			tree, err := apptree.Build(context.Background(), r, apptree.Options{KustomizeBuildOptions: tc.buildOptions})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Check(context.Background(), tree, Options{})
			if err != nil {
				t.Fatal(err)
			}
			found := tc.wantRule == ""
			for _, f := range res.Findings {
				t.Logf("%s (hint: %s)", f, f.Hint)
				found = found || f.Rule == tc.wantRule
				if f.Rule == "source.helm-charts" && f.Pos.File != "base/kustomization.yaml" {
					t.Errorf("source.helm-charts at %s, want the kustomization that names helmCharts", f.Pos)
				}
			}
			if !found {
				t.Errorf("no %s finding", tc.wantRule)
			}
			if got := res.Count(Error); got != tc.wantErrors || res.Count(Warning) != res.Count(Error) {
				t.Errorf("%d errors, %d warnings or worse; want %d errors and no warning", got, res.Count(Warning), tc.wantErrors)
			}
			built := tc.wantRule != "source.helm-charts" && tc.wantRule != "source.helm-charts-disabled"
			replicas := int64(-1)
			for _, n := range tree.Nodes {
				for _, o := range n.Objects() {
					if o.GetKind() == "Deployment" && o.GetName() == "web" {
						replicas, _, _ = unstructured.NestedInt64(o.Object, "spec", "replicas")
					}
				}
			}
			if built && replicas != 3 {
				t.Errorf("the chart's Deployment with the overlay's replicas (3) was not rendered: replicas %d", replicas)
			}
			if !built && replicas != -1 {
				t.Errorf("built without --enable-helm")
			}
		})
	}
}

// ensureHelm makes the helm program kustomize's helmCharts run available:
// the one on PATH or in tug's cache, else built from lab/tools into the
// cache (as the lab builds it).
func ensureHelm(t *testing.T) {
	t.Helper()
	if render.HelmCommand() != "" {
		return
	}
	modules, err := tools.FindModulesDir(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := (&tools.Builder{ModulesDir: modules}).Ensure(ctx, tools.Helm); err != nil {
		t.Fatalf("build helm: %v", err)
	}
	if render.HelmCommand() == "" {
		t.Fatal("helm was built but render.HelmCommand does not find it")
	}
}
