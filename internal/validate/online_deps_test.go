package validate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/apptree"
	"github.com/tug-gitops/tug/internal/chartfetch"
	"github.com/tug-gitops/tug/internal/chartfetch/chartfetchtest"
	"github.com/tug-gitops/tug/internal/repo"
)

// The db dependency: a ConfigMap naming its version and replicas.
const depConfigMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: '{{ .Release.Name }}-db'}
data: {replicas: '{{ .Values.replicas }}', version: '{{ .Chart.Version }}'}
`

// The cache dependency (seeded mistake): a Service with a misspelled
// selector, named after the chart as Helm sees it (its alias).
const depBadService = `apiVersion: v1
kind: Service
metadata: {name: '{{ .Chart.Name }}'}
spec:
  ports: [{port: 6379}]
  selectr: {app: cache}
`

// TestOnlineChartDependenciesAndRemoteValueFiles: a chart in the
// repository whose Chart.yaml lists dependencies that are not vendored —
// db from a Helm repository (Chart.lock pins 1.0.0 though ^1.0.0 would
// take the broken 1.1.0) and cache from an OCI registry (aliased redis,
// under a condition) — and Applications with remote value files, one of
// them a 404. Offline: source.remote infos and no request to any server.
// Online: the dependencies are fetched into the cache and rendered with
// the chart (a mistake inside one is an error at the Application), the
// remote value file's values reach the dependency, the 404 is an error at
// its valueFiles line; a second run requests no chart again; the
// checkout is byte-identical after every run.
func TestOnlineChartDependenciesAndRemoteValueFiles(t *testing.T) {
	charts := t.TempDir()
	chartfetchtest.PackageChart(t, charts, "db", "1.0.0", depConfigMap)
	chartfetchtest.PackageChart(t, charts, "db", "1.1.0", onlineBadDeployment)
	helmRepo, repoHits := chartfetchtest.HelmRepo(t, charts)
	ociURL, ociHits := chartfetchtest.OCIRegistryHits(t, chartfetchtest.PackageChart(t, t.TempDir(), "cache", "0.4.1", depBadService), "cache", "0.4.1")

	var valueHits, valueDownloads atomic.Int64
	values := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		valueHits.Add(1)
		if r.URL.Path != "/shop.yaml" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("If-None-Match") == `"1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		valueDownloads.Add(1)
		w.Header().Set("ETag", `"1"`)
		io.WriteString(w, "db: {replicas: 4}\n")
	}))
	defer values.Close()

	root := t.TempDir()
	writeTestFile(t, root, "tug.yaml", "repoURL: https://github.com/acme/platform.git\n")
	writeTestFile(t, root, "charts/shop/Chart.yaml", `apiVersion: v2
name: shop
version: 0.1.0
dependencies:
  - name: db
    version: ^1.0.0
    repository: `+helmRepo.URL+`
  - name: cache
    version: ~0.4.0
    repository: `+ociURL+`
    alias: redis
    condition: redis.enabled
  - name: lib
    version: 0.1.0
    repository: file://../lib
`)
	writeTestFile(t, root, "charts/lib/Chart.yaml", "apiVersion: v2\nname: lib\nversion: 0.1.0\n")
	writeTestFile(t, root, "charts/lib/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}-lib'}\ndata: {a: b}\n")
	writeTestFile(t, root, "charts/shop/Chart.lock", `dependencies:
- name: db
  repository: `+helmRepo.URL+`
  version: 1.0.0
- name: cache
  repository: `+ociURL+`
  version: 0.4.1
digest: sha256:0000000000000000000000000000000000000000000000000000000000000000
generated: "2026-01-01T00:00:00Z"
`)
	writeTestFile(t, root, "charts/shop/values.yaml", "redis: {enabled: true}\n")
	writeTestFile(t, root, "charts/shop/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}'}\ndata: {a: b}\n")
	app := func(name, extra string) {
		writeTestFile(t, root, "apps/"+name+".yaml", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: `+name+`, namespace: argocd}
spec:
  project: default
  source:
    repoURL: https://github.com/acme/platform.git
    path: charts/shop
    helm:
`+extra+`
  destination: {server: https://kubernetes.default.svc, namespace: `+name+`}
`)
	}
	app("shop", "      valueFiles: [values.yaml, "+values.URL+"/shop.yaml]")
	app("lite", "      valuesObject: {redis: {enabled: false}}")
	app("broken", "      valueFiles:\n        - values.yaml\n        - "+values.URL+"/gone.yaml")

	before := hashTree(t, root)
	build := func(online bool, cache *chartfetch.Cache) (*apptree.Tree, *Result) {
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
		if after := hashTree(t, root); after != before {
			t.Errorf("online %v: the checkout changed", online)
		}
		return tree, res
	}
	has := func(res *Result, rule, file string, line int, text string) bool {
		for _, f := range res.Findings {
			if f.Rule == rule && (file == "" || f.Pos.File == file) && (line == 0 || f.Pos.Line == line) && strings.Contains(f.Message+" "+f.Hint, text) {
				return true
			}
		}
		return false
	}

	t.Run("offline", func(t *testing.T) {
		tree, res := build(false, nil)
		lib := false
		for _, n := range tree.Nodes {
			for _, o := range n.Objects() {
				lib = lib || n.App.Name == "shop" && o.GetName() == "shop-lib"
			}
		}
		if !lib || has(res, "source.remote", "", 0, "lib") {
			t.Errorf("the file:// dependency lib was not rendered from the checkout offline")
		}
		for _, want := range []struct {
			file string
			line int
			text string
		}{
			{"charts/shop/Chart.yaml", 5, "db ^1.0.0 (Chart.lock: 1.0.0) from " + helmRepo.URL},
			{"charts/shop/Chart.yaml", 8, "cache ~0.4.0 (Chart.lock: 0.4.1) from " + ociURL},
			{"apps/shop.yaml", 0, values.URL + "/shop.yaml"},
			{"apps/broken.yaml", 0, values.URL + "/gone.yaml"},
		} {
			if !has(res, "source.remote", want.file, want.line, want.text) || !has(res, "source.remote", want.file, want.line, "run with --online") {
				t.Errorf("no source.remote at %s:%d naming %s with the --online hint", want.file, want.line, want.text)
			}
		}
		if res.Count(Warning) != 0 {
			t.Errorf("%d warnings or errors offline, want none", res.Count(Warning))
		}
		if n := repoHits.Load() + ociHits.Load() + valueHits.Load(); n != 0 {
			t.Errorf("offline validation sent %d requests (chart repository %d, registry %d, value files %d)", n, repoHits.Load(), ociHits.Load(), valueHits.Load())
		}
	})

	cacheDir := t.TempDir()
	check := func(t *testing.T) {
		tree, res := build(true, &chartfetch.Cache{Dir: cacheDir})
		if !has(res, "manifest.schema", "apps/shop.yaml", 0, "selectr") {
			t.Errorf("the misspelled field in the cache dependency's Service is not an error at apps/shop.yaml")
		}
		if !has(res, "source.values-missing", "apps/broken.yaml", 12, "GET "+values.URL+"/gone.yaml answered 404 Not Found") {
			t.Errorf("the 404 value file is not an error at apps/broken.yaml:12 saying what the URL answered")
		}
		if res.Count(Error) != 2 || has(res, "source.remote", "", 0, "") {
			t.Errorf("%d errors, want 2 (and no source.remote)", res.Count(Error))
		}
		type obj struct{ app, kind, name string }
		got := map[obj]*unstructured.Unstructured{}
		for _, n := range tree.Nodes {
			for _, o := range n.Objects() {
				got[obj{n.App.Name, o.GetKind(), o.GetName()}] = o
			}
		}
		db := got[obj{"shop", "ConfigMap", "shop-db"}]
		if db == nil {
			t.Fatalf("the db dependency was not rendered for shop; objects %v", got)
		}
		if data, _, _ := unstructured.NestedStringMap(db.Object, "data"); data["version"] != "1.0.0" || data["replicas"] != "4" {
			t.Errorf("db ConfigMap %v, want version 1.0.0 (Chart.lock) and replicas 4 (the remote value file)", data)
		}
		if got[obj{"shop", "Service", "redis"}] == nil {
			t.Errorf("the cache dependency did not render under its alias redis")
		}
		if got[obj{"lite", "Service", "redis"}] != nil || got[obj{"lite", "ConfigMap", "lite-db"}] == nil {
			t.Errorf("lite: the condition redis.enabled=false did not leave the cache dependency out, or db is missing")
		}
		if entries, _ := filepath.Glob(filepath.Join(cacheDir, "*", "*", "Chart.yaml")); len(entries) != 2 {
			t.Errorf("cache holds charts %v, want db and cache", entries)
		}
	}
	t.Run("online", check)
	repo1, oci1, dl1 := repoHits.Load(), ociHits.Load(), valueDownloads.Load()
	if repo1 == 0 || oci1 == 0 || dl1 != 1 {
		t.Errorf("first online run: %d chart repository, %d registry requests, %d value file downloads (want some, some, 1)", repo1, oci1, dl1)
	}
	t.Run("online again, from the cache", func(t *testing.T) {
		check(t)
		if repoHits.Load() != repo1 || ociHits.Load() != oci1 || valueDownloads.Load() != dl1 {
			t.Errorf("the second run requested again: chart repository %d→%d, registry %d→%d, value file downloads %d→%d",
				repo1, repoHits.Load(), oci1, ociHits.Load(), dl1, valueDownloads.Load())
		}
	})
	if _, err := os.Stat(filepath.Join(root, "charts/shop/charts")); err == nil {
		t.Errorf("a charts/ directory was created in the checkout")
	}
}

// hashTree hashes every path, mode and content under root.
func hashTree(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		io.WriteString(h, rel+"\x00"+info.Mode().String()+"\x00")
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(data)
		}
		h.Write([]byte{0})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestOnlineKustomizeHelmChartsNotFetched: a kustomization's helmCharts
// chart that is not vendored would be `helm pull`ed by kustomize into the
// checkout, so it stays source.remote even with --online (and the hint
// says to vendor it, not to run with --online); the chart repository is
// not asked and the checkout does not change.
func TestOnlineKustomizeHelmChartsNotFetched(t *testing.T) {
	charts := t.TempDir()
	chartfetchtest.PackageChart(t, charts, "web", "1.0.0", onlineConfigMap)
	helmRepo, hits := chartfetchtest.HelmRepo(t, charts)
	root := t.TempDir()
	writeTestFile(t, root, "tug.yaml", "repoURL: https://github.com/acme/platform.git\n")
	writeTestFile(t, root, "apps/web.yaml", `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: web, namespace: argocd}
spec:
  project: default
  source: {repoURL: https://github.com/acme/platform.git, path: web}
  destination: {server: https://kubernetes.default.svc, namespace: web}
`)
	writeTestFile(t, root, "web/kustomization.yaml", "helmCharts:\n  - {name: web, repo: "+helmRepo.URL+", version: 1.0.0, releaseName: web}\n")
	before := hashTree(t, root)
	for _, online := range []bool{false, true} {
		r, err := repo.Load(root)
		if err != nil {
			t.Fatal(err)
		}
		tree, err := apptree.Build(context.Background(), r, apptree.Options{Online: online, Charts: &chartfetch.Cache{Dir: t.TempDir()}, KustomizeBuildOptions: "--enable-helm"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Check(context.Background(), tree, Options{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range res.Findings {
			t.Logf("online %v: %s (hint: %s)", online, f, f.Hint)
			found = found || f.Rule == "source.remote" && f.Pos.File == "web/kustomization.yaml" &&
				strings.Contains(f.Hint, "vendor it under web/charts") && !strings.Contains(f.Hint, "run with --online")
		}
		if !found || res.Count(Warning) != 0 {
			t.Errorf("online %v: want source.remote at web/kustomization.yaml with the vendoring hint and no warnings", online)
		}
	}
	if hits.Load() != 0 || hashTree(t, root) != before {
		t.Errorf("%d requests to the chart repository (want 0); checkout changed: %v", hits.Load(), hashTree(t, root) != before)
	}
}
