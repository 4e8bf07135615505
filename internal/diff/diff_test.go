package diff

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// Each case is real commits in a copy of this repository's GitOps parts,
// compared by Run from git objects; the text output is a golden file and
// the assertions say what must hold whatever the golden file says.

func TestTagBumpChangesOneImageLineInOneEnvironment(t *testing.T) {
	dir := newRepo(t)
	base := git(t, dir, "rev-parse", "HEAD")
	edit(t, dir, "charts/backend/values-prod.yaml", `tag: "0.1.0"`, `tag: "0.2.0"`)
	head := commitAll(t, dir, "bump")
	res := runDiff(t, dir, base, head)

	if got := appNames(res); !slices.Equal(got, []string{"backend-prod:changed"}) {
		t.Fatalf("changed apps = %v, want only backend-prod", got)
	}
	a := res.Apps[0]
	// The chart labels every object with app.kubernetes.io/version and
	// sets APP_VERSION from the tag, so those move too; the image line
	// changes once, in the Deployment, and nothing else does.
	want := map[string][2]string{
		"Deployment.apps backend": {`-        image: ghcr.io/tug-gitops/backend:0.1.0`, `+        image: ghcr.io/tug-gitops/backend:0.2.0`},
	}
	if a.Env != "prod" || len(a.Resources) != 2 {
		t.Fatalf("backend-prod resources = %v, want the Deployment and the Service changed, in env prod", a.Resources)
	}
	images := 0
	for _, r := range a.Resources {
		if r.Change != Changed {
			t.Errorf("%s: %s, want changed", r.ResourceKey, r.Change)
		}
		plus, minus := changedLines(r.Diff)
		for _, l := range append(plus, minus...) {
			switch {
			case strings.Contains(l, "image: "):
				images++
				if w, ok := want[r.ResourceKey.String()]; !ok || l != w[0] && l != w[1] {
					t.Errorf("%s: unexpected image line %q", r.ResourceKey, l)
				}
			case strings.Contains(l, `app.kubernetes.io/version: 0.`), strings.HasSuffix(l, `value: 0.1.0`) || strings.HasSuffix(l, `value: 0.2.0`):
			default:
				t.Errorf("%s: a line other than the image and the version label changed: %q", r.ResourceKey, l)
			}
		}
	}
	if images != 2 {
		t.Errorf("%d image lines changed (- and +), want exactly one line replaced", images)
	}
	if len(a.Outside) != 0 {
		t.Errorf("values-prod.yaml is backend-prod's own file, but Outside = %v", a.Outside)
	}
	if res.Unchanged != 4 {
		t.Errorf("unchanged = %d, want 4 (root, backend-dev, frontend-dev, frontend-prod)", res.Unchanged)
	}
	golden(t, "tag-bump.txt", text(t, res))
}

func TestSharedValuesChangeAffectsBothEnvironments(t *testing.T) {
	dir := newRepo(t)
	base := git(t, dir, "rev-parse", "HEAD")
	edit(t, dir, "charts/backend/values.yaml", "memory: 64Mi", "memory: 96Mi")
	head := commitAll(t, dir, "more memory")
	res := runDiff(t, dir, base, head)

	if got := appNames(res); !slices.Equal(got, []string{"backend-dev:changed", "backend-prod:changed"}) {
		t.Fatalf("changed apps = %v, want backend-dev and backend-prod", got)
	}
	for _, a := range res.Apps {
		if !slices.Equal(a.Outside, []string{"charts/backend/values.yaml"}) {
			t.Errorf("%s: Outside = %v, want the shared values.yaml", a.Name, a.Outside)
		}
		plus, minus := changedLines(a.Resources[0].Diff)
		if len(plus) != 1 || len(minus) != 1 || !strings.Contains(plus[0], "memory: 96Mi") {
			t.Errorf("%s: want one memory line changed:\n%s", a.Name, a.Resources[0].Diff)
		}
	}
	golden(t, "shared-values.txt", text(t, res))
}

func TestNewApplication(t *testing.T) {
	dir := newRepo(t)
	base := git(t, dir, "rev-parse", "HEAD")
	write(t, dir, "infra/gitops/apps/backend-staging.yaml", appYAML("backend-staging", "charts/backend", "values-dev.yaml", "shop-staging"))
	head := commitAll(t, dir, "staging")
	res := runDiff(t, dir, base, head)

	if got := appNames(res); !slices.Equal(got, []string{"backend-staging:added", "root:changed"}) {
		t.Fatalf("apps = %v, want backend-staging added and root changed (it renders the new Application)", got)
	}
	a := appNamed(res, "backend-staging")
	if added, changed, removed := a.Counts(); added != 2 || changed+removed != 0 {
		t.Errorf("backend-staging: +%d ~%d -%d, want its Deployment and Service added", added, changed, removed)
	}
	r := appNamed(res, "root")
	if len(r.Resources) != 1 || r.Resources[0].Kind != "Application" || r.Resources[0].Name != "backend-staging" || r.Resources[0].Change != Added {
		t.Errorf("root resources = %+v, want Application backend-staging added", r.Resources)
	}
	golden(t, "new-app.txt", text(t, res))
}

func TestRemovedApplication(t *testing.T) {
	dir := newRepo(t)
	base := git(t, dir, "rev-parse", "HEAD")
	git(t, dir, "rm", "-q", "infra/gitops/apps/frontend.yaml")
	head := commitAll(t, dir, "no frontend")
	res := runDiff(t, dir, base, head)

	if got := appNames(res); !slices.Equal(got, []string{"frontend-dev:removed", "frontend-prod:removed", "root:changed"}) {
		t.Fatalf("apps = %v", got)
	}
	for _, n := range []string{"frontend-dev", "frontend-prod"} {
		if added, changed, removed := appNamed(res, n).Counts(); removed != 2 || added+changed != 0 {
			t.Errorf("%s: +%d ~%d -%d, want two resources removed", n, added, changed, removed)
		}
	}
	golden(t, "removed-app.txt", text(t, res))
}

func TestSecretValuesNeverShown(t *testing.T) {
	const oldValue, newValue = "old-s3cret-Value", "new-s3cret-Value"
	dir := newRepo(t)
	write(t, dir, "charts/backend/templates/secret.yaml", `apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-db
stringData:
  password: {{ .Values.dbPassword | quote }}
  user: app
data:
  token: {{ .Values.apiToken | b64enc | quote }}
`)
	edit(t, dir, "charts/backend/values.yaml", "replicaCount: 1\n", "replicaCount: 1\ndbPassword: "+oldValue+"\napiToken: "+oldValue+"-token\n")
	base := commitAll(t, dir, "secret")
	edit(t, dir, "charts/backend/values-prod.yaml", "replicaCount: 2\n", "replicaCount: 2\ndbPassword: "+newValue+"\n")
	head := commitAll(t, dir, "rotate")
	res := runDiff(t, dir, base, head)

	if got := appNames(res); !slices.Equal(got, []string{"backend-prod:changed"}) {
		t.Fatalf("apps = %v, want only backend-prod", got)
	}
	rs := res.Apps[0].Resources
	if len(rs) != 1 || rs[0].Kind != "Secret" || rs[0].Change != Changed {
		t.Fatalf("resources = %+v, want the Secret changed", rs)
	}
	plus, minus := changedLines(rs[0].Diff)
	if len(plus) != 1 || len(minus) != 1 || !strings.Contains(plus[0], "password: ") || !strings.Contains(plus[0], "+++") {
		t.Errorf("want one masked password line changed:\n%s", rs[0].Diff)
	}
	js, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	outputs := text(t, res) + string(js) + Markdown(res, MarkdownOptions{})
	for _, v := range []string{oldValue, newValue, oldValue + "-token"} {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
			if strings.Contains(outputs, form) {
				t.Errorf("a Secret value (%q) appears in the output", form)
			}
		}
	}
	golden(t, "secret.txt", text(t, res))
}

func TestChartTemplateChangeAffectsDevAndProd(t *testing.T) {
	dir := newRepo(t)
	base := git(t, dir, "rev-parse", "HEAD")
	edit(t, dir, "charts/frontend/templates/deployment.yaml", "revisionHistoryLimit: 3", "revisionHistoryLimit: 5")
	head := commitAll(t, dir, "history")
	res := runDiff(t, dir, base, head)

	if got := appNames(res); !slices.Equal(got, []string{"frontend-dev:changed", "frontend-prod:changed"}) {
		t.Fatalf("apps = %v, want frontend-dev and frontend-prod", got)
	}
	for _, a := range res.Apps {
		if !slices.Equal(a.Outside, []string{"charts/frontend/templates/deployment.yaml"}) {
			t.Errorf("%s: Outside = %v, want the shared template", a.Name, a.Outside)
		}
	}
	md := Markdown(res, MarkdownOptions{})
	if !strings.Contains(md, "- frontend-dev, frontend-prod: `charts/frontend/templates/deployment.yaml`") {
		t.Errorf("markdown does not list dev and prod as affected by the template:\n%s", md)
	}
	golden(t, "chart-template.txt", text(t, res))
	golden(t, "chart-template.md", Markdown(stable(res), MarkdownOptions{}))
}

func TestApplicationSetChange(t *testing.T) {
	dir := newRepo(t)
	write(t, dir, "infra/gitops/apps/echo.yaml", `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: echo
  namespace: argocd
spec:
  goTemplate: true
  generators:
    - list:
        elements:
          - env: dev
          - env: prod
  template:
    metadata:
      name: 'echo-{{.env}}'
    spec:
      project: shop
      source:
        repoURL: https://github.com/tug-gitops/tug.git
        targetRevision: main
        path: charts/frontend
        helm:
          releaseName: echo
          valueFiles:
            - 'values-{{.env}}.yaml'
      destination:
        server: https://kubernetes.default.svc
        namespace: 'shop-{{.env}}'
`)
	base := commitAll(t, dir, "echo")
	edit(t, dir, "infra/gitops/apps/echo.yaml", "          releaseName: echo\n", "          releaseName: echo\n          parameters:\n            - name: replicaCount\n              value: \"4\"\n")
	head := commitAll(t, dir, "echo replicas")
	res := runDiff(t, dir, base, head)

	if got := appNames(res); !slices.Equal(got, []string{"echo-dev:changed", "echo-prod:changed", "root:changed"}) {
		t.Fatalf("apps = %v, want both generated apps and root (it holds the ApplicationSet)", got)
	}
	for _, n := range []string{"echo-dev", "echo-prod"} {
		a := appNamed(res, n)
		plus, _ := changedLines(a.Resources[0].Diff)
		if len(a.Resources) != 1 || a.Resources[0].Kind != "Deployment" || len(plus) != 1 || !strings.Contains(plus[0], "replicas: 4") {
			t.Errorf("%s: want the Deployment's replicas set to 4: %+v", n, a.Resources)
		}
		if len(a.Outside) != 0 {
			t.Errorf("%s: the ApplicationSet is its own file, but Outside = %v", n, a.Outside)
		}
	}
	golden(t, "appset.txt", text(t, res))
}

func TestProjectChangeListsItsApplications(t *testing.T) {
	dir := newRepo(t)
	base := git(t, dir, "rev-parse", "HEAD")
	edit(t, dir, "infra/gitops/apps/project.yaml", "      namespace: shop-prod\n", "      namespace: shop-prod\n    - server: https://kubernetes.default.svc\n      namespace: shop-staging\n")
	head := commitAll(t, dir, "staging namespace")
	res := runDiff(t, dir, base, head)
	want := []string{"backend-dev:affected", "backend-prod:affected", "frontend-dev:affected", "frontend-prod:affected", "root:changed"}
	if got := appNames(res); !slices.Equal(got, want) {
		t.Fatalf("apps = %v, want %v", got, want)
	}
	if a := appNamed(res, "backend-dev"); !a.ProjectChanged || !slices.Equal(a.Outside, []string{"infra/gitops/apps/project.yaml"}) {
		t.Errorf("backend-dev: %+v, want its project's file as the outside change", a)
	}
}

func TestWorkingTreeIsTheDefaultHead(t *testing.T) {
	dir := newRepo(t)
	edit(t, dir, "charts/frontend/values-dev.yaml", "environment: dev", "environment: development")
	res := runDiff(t, dir, "main", WorkingTree)
	if got := appNames(res); !slices.Equal(got, []string{"frontend-dev:changed"}) {
		t.Fatalf("apps = %v, want frontend-dev changed by the uncommitted edit", got)
	}
	if res.Head.Ref != "working tree" || res.Head.Commit != "" {
		t.Errorf("head = %+v", res.Head)
	}
	// The user's files are as they were: nothing was checked out.
	if st := git(t, dir, "status", "--porcelain"); st != "M charts/frontend/values-dev.yaml" {
		t.Errorf("git status = %q, want only the user's own edit", st)
	}
}

func TestDefaultBaseIsTheMergeBase(t *testing.T) {
	dir := newRepo(t)
	seed := git(t, dir, "rev-parse", "HEAD")
	git(t, dir, "checkout", "-q", "-b", "feature")
	edit(t, dir, "charts/backend/values-dev.yaml", "environment: dev", "environment: dev2")
	commitAll(t, dir, "feature")
	res := runDiff(t, dir, "", "HEAD")
	if res.Base.Commit != seed {
		t.Fatalf("base = %+v, want the merge base with main (%s)", res.Base, seed)
	}
	if got := appNames(res); !slices.Equal(got, []string{"backend-dev:changed"}) {
		t.Fatalf("apps = %v", got)
	}
}

func TestBadRevisionIsAClearError(t *testing.T) {
	dir := newRepo(t)
	_, err := Run(t.Context(), Options{Dir: dir, Base: "no-such-branch"})
	if err == nil || !strings.Contains(err.Error(), `unknown revision "no-such-branch"`) {
		t.Fatalf("err = %v", err)
	}
	_, err = Run(t.Context(), Options{Dir: dir, Base: "--output=/tmp/x"})
	if err == nil || !strings.Contains(err.Error(), "must not start with '-'") {
		t.Fatalf("err = %v", err)
	}
}

func TestRenderFailureIsShownNotFatal(t *testing.T) {
	dir := newRepo(t)
	base := git(t, dir, "rev-parse", "HEAD")
	edit(t, dir, "charts/backend/templates/deployment.yaml", "replicas: {{ .Values.replicaCount }}", "replicas: {{ .Values.replicaCount")
	head := commitAll(t, dir, "broken")
	res := runDiff(t, dir, base, head)
	for _, n := range []string{"backend-dev", "backend-prod"} {
		a := appNamed(res, n)
		if a == nil || a.Change != Changed || !strings.Contains(a.Error, "deployment.yaml") {
			t.Errorf("%s: %+v, want changed with the render error", n, a)
		}
	}
}

func text(t *testing.T, res *Result) string {
	t.Helper()
	var b strings.Builder
	if err := WriteText(&b, stable(res), false); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// changedLines are a unified diff's + and - lines, headers excluded.
func changedLines(d string) (plus, minus []string) {
	for _, l := range strings.Split(d, "\n") {
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
		case strings.HasPrefix(l, "+"):
			plus = append(plus, l)
		case strings.HasPrefix(l, "-"):
			minus = append(minus, l)
		}
	}
	return
}

func appYAML(name, path, values, ns string) string {
	return `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: ` + name + `
  namespace: argocd
spec:
  project: shop
  source:
    repoURL: https://github.com/tug-gitops/tug.git
    targetRevision: main
    path: ` + path + `
    helm:
      releaseName: backend
      valueFiles:
        - ` + values + `
  destination:
    server: https://kubernetes.default.svc
    namespace: ` + ns + `
`
}

// Kustomize sources render as Argo CD renders them: with the
// Application's kustomize edits (images), and reading the shared base,
// which makes a base change an outside change of every overlay using it.
func TestKustomizeEditsAndSharedBase(t *testing.T) {
	dir := newRepo(t)
	write(t, dir, "kustomize/base/kustomization.yaml", "resources: [deployment.yaml]\n")
	write(t, dir, "kustomize/base/deployment.yaml", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: ghcr.io/acme/web:1.0.0}]
`)
	for _, env := range []string{"dev", "prod"} {
		write(t, dir, "kustomize/overlays/"+env+"/kustomization.yaml", "resources: [../../base]\nnamespace: web-"+env+"\n")
		write(t, dir, "infra/gitops/apps/web-"+env+".yaml", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web-`+env+`, namespace: argocd}
spec:
  project: shop
  source:
    repoURL: https://github.com/tug-gitops/tug.git
    path: kustomize/overlays/`+env+`
  destination: {server: https://kubernetes.default.svc, namespace: web-`+env+`}
`)
	}
	base := commitAll(t, dir, "web")

	edit(t, dir, "infra/gitops/apps/web-prod.yaml", "path: kustomize/overlays/prod", "path: kustomize/overlays/prod\n    kustomize: {images: ['ghcr.io/acme/web:2.0.0']}")
	tag := commitAll(t, dir, "web-prod on 2.0.0")
	res := runDiff(t, dir, base, tag)
	a := appNamed(res, "web-prod")
	if a == nil || len(a.Resources) != 1 || a.Resources[0].Kind != "Deployment" {
		t.Fatalf("web-prod: %+v, want its Deployment changed by the image override", a)
	}
	if plus, _ := changedLines(a.Resources[0].Diff); len(plus) != 1 || !strings.Contains(plus[0], "ghcr.io/acme/web:2.0.0") {
		t.Errorf("web-prod: want the image line changed to 2.0.0:\n%s", a.Resources[0].Diff)
	}
	if appNamed(res, "web-dev") != nil {
		t.Errorf("web-dev changed by web-prod's override: %v", appNames(res))
	}

	edit(t, dir, "kustomize/base/deployment.yaml", "replicas: 1", "replicas: 2")
	replicas := commitAll(t, dir, "two replicas")
	res = runDiff(t, dir, tag, replicas)
	for _, n := range []string{"web-dev", "web-prod"} {
		a := appNamed(res, n)
		if a == nil || !slices.Contains(a.Outside, "kustomize/base/deployment.yaml") {
			t.Errorf("%s: %+v, want changed through the shared base", n, a)
		}
	}
}
