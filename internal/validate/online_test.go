package validate

import (
	"context"
	"strings"
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
