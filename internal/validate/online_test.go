package validate

import (
	"context"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/apptree"
	"github.com/tug-gitops/tug/internal/chartfetch"
	"github.com/tug-gitops/tug/internal/chartfetch/chartfetchtest"
	"github.com/tug-gitops/tug/internal/repo"
)

const onlineConfigMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: '{{ .Release.Name }}'}
data: {replicas: '{{ .Values.replicas }}'}
`

// A Deployment with a misspelled field (replica), in chart version 2.0.0.
const onlineBadDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: '{{ .Release.Name }}'}
spec:
  replica: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: 'ghcr.io/acme/web:1.0.0'}]}
`

// TestOnlineChartsFromHelmRepositoryAndOCI: Applications taking charts from
// a Helm repository (with a $values file from this repository) and from an
// OCI registry, both served on loopback. Offline they are source.remote and
// nothing is requested; with Online they are fetched, rendered with the
// Application's values and checked, so a mistake inside a fetched chart
// is an error at the Application.
func TestOnlineChartsFromHelmRepositoryAndOCI(t *testing.T) {
	charts := t.TempDir()
	chartfetchtest.PackageChart(t, charts, "web", "1.0.0", onlineConfigMap)
	chartfetchtest.PackageChart(t, charts, "web", "2.0.0", onlineBadDeployment)
	helmRepo, hits := chartfetchtest.HelmRepo(t, charts)
	ociURL := chartfetchtest.OCIRegistry(t, chartfetchtest.PackageChart(t, t.TempDir(), "api", "0.4.1", onlineConfigMap), "api", "0.4.1")

	write := func(webVersion string) string {
		root := t.TempDir()
		writeTestFile(t, root, "tug.yaml", "repoURL: https://github.com/acme/platform.git\n")
		writeTestFile(t, root, "values/web.yaml", "replicas: 3\n")
		writeTestFile(t, root, "apps/web.yaml", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web, namespace: argocd}
spec:
  project: default
  sources:
    - repoURL: `+helmRepo.URL+`
      chart: web
      targetRevision: `+webVersion+`
      helm: {valueFiles: [$values/values/web.yaml]}
    - repoURL: https://github.com/acme/platform.git
      targetRevision: main
      ref: values
  destination: {server: https://kubernetes.default.svc, namespace: web}
`)
		writeTestFile(t, root, "apps/api.yaml", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: api, namespace: argocd}
spec:
  project: default
  source:
    repoURL: `+ociURL+`
    chart: api
    targetRevision: 0.4.1
  destination: {server: https://kubernetes.default.svc, namespace: api}
`)
		return root
	}
	build := func(root string, online bool, cache *chartfetch.Cache) (*apptree.Tree, *Result) {
		t.Helper()
		r, err := repo.Load(root)
		if err != nil {
			t.Fatal(err)
		}
		tree, err := apptree.Build(context.Background(), r, apptree.Options{Online: online, Charts: cache})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Check(context.Background(), tree, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range res.Findings {
			t.Logf("online %v: %s", online, f)
		}
		return tree, res
	}
	cache := &chartfetch.Cache{Dir: t.TempDir()}

	t.Run("offline", func(t *testing.T) {
		_, res := build(write("1.0.0"), false, nil)
		remote := 0
		for _, f := range res.Findings {
			if f.Rule == "source.remote" {
				remote++
			}
		}
		if remote != 2 || res.Count(Warning) != 0 {
			t.Errorf("%d source.remote findings (want 2), %d warnings or errors", remote, res.Count(Warning))
		}
		if hits.Load() != 0 {
			t.Errorf("offline validation sent %d requests to the chart repository", hits.Load())
		}
	})
	t.Run("online", func(t *testing.T) {
		tree, res := build(write("1.0.0"), true, cache)
		if res.Count(Info) != 0 {
			t.Errorf("%d findings, want none", len(res.Findings))
		}
		got := map[string]string{}
		for _, n := range tree.Nodes {
			for _, o := range n.Objects() {
				if o.GetKind() == "ConfigMap" {
					got[o.GetName()], _, _ = unstructured.NestedString(o.Object, "data", "replicas")
				}
			}
		}
		if got["web"] != "3" || got["api"] != "1" {
			t.Errorf("rendered ConfigMaps' replicas %v, want web 3 (the $values file) and api 1 (the chart's default)", got)
		}
	})
	t.Run("online, mistake in the fetched chart", func(t *testing.T) {
		_, res := build(write("2.0.0"), true, cache)
		found := false
		for _, f := range res.Findings {
			found = found || f.Rule == "manifest.schema" && f.Pos.File == "apps/web.yaml" && strings.Contains(f.Message, "replica")
		}
		if !found || res.Count(Error) != 1 {
			t.Errorf("want one manifest.schema error on apps/web.yaml naming the misspelled field; %d errors", res.Count(Error))
		}
	})
}

// TestOnlineRemoteKustomizeBase: an overlay whose base is in another git
// repository, served by git http-backend on loopback. Offline it is
// source.remote and git is never asked; online kustomize's loader clones
// it and the overlay's build, base included, is checked.
func TestOnlineRemoteKustomizeBase(t *testing.T) {
	remote := t.TempDir()
	work := filepath.Join(remote, "work")
	writeTestFile(t, work, "base/kustomization.yaml", "resources: [configmap.yaml]\n")
	writeTestFile(t, work, "base/configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {level: info}\n")
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git(work, "init", "-q", "-b", "main")
	git(work, "add", ".")
	git(work, "commit", "-q", "-m", "base")
	git(remote, "clone", "-q", "--bare", work, "shared.git")
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	// kustomize first tries the URL as a plain file, which git-http-backend
	// refuses on its stderr: kept for the log, not printed.
	var backendErr strings.Builder
	backend := &cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + remote, "GIT_HTTP_EXPORT_ALL=1"}, Stderr: &syncWriter{w: &backendErr}}
	defer func() {
		if t.Failed() {
			t.Logf("git http-backend's stderr:\n%s", backendErr.String())
		}
	}()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		backend.ServeHTTP(w, r)
	}))
	defer srv.Close()

	root := t.TempDir()
	writeTestFile(t, root, "tug.yaml", "repoURL: https://github.com/acme/platform.git\n")
	writeTestFile(t, root, "apps/web.yaml", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://github.com/acme/platform.git, path: overlays/dev}
  destination: {server: https://kubernetes.default.svc, namespace: web}
`)
	writeTestFile(t, root, "overlays/dev/kustomization.yaml", `resources:
  - `+srv.URL+`/shared.git//base?ref=main&timeout=120s
patches:
  - target: {kind: ConfigMap, name: shared}
    patch: '[{"op": "replace", "path": "/data/level", "value": "debug"}]'
`)
	for _, online := range []bool{false, true} {
		r, err := repo.Load(root)
		if err != nil {
			t.Fatal(err)
		}
		tree, err := apptree.Build(context.Background(), r, apptree.Options{Online: online, Charts: &chartfetch.Cache{Dir: t.TempDir()}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Check(context.Background(), tree, Options{})
		if err != nil {
			t.Fatal(err)
		}
		remoteInfo := false
		for _, f := range res.Findings {
			t.Logf("online %v: %s", online, f)
			remoteInfo = remoteInfo || f.Rule == "source.remote"
		}
		level := ""
		for _, n := range tree.Nodes {
			for _, o := range n.Objects() {
				if o.GetKind() == "ConfigMap" && o.GetName() == "shared" {
					level, _, _ = unstructured.NestedString(o.Object, "data", "level")
				}
			}
		}
		switch {
		case !online && (!remoteInfo || requests.Load() != 0 || level != ""):
			t.Errorf("offline: source.remote %v, %d requests to the git server, level %q; want the info, none, nothing built", remoteInfo, requests.Load(), level)
		case online && (level != "debug" || res.Count(Info) != 0):
			t.Errorf("online: the overlay over the remote base gave level %q (want debug), %d findings (want none)", level, len(res.Findings))
		}
	}
}

// syncWriter serialises writes from concurrent CGI requests.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
