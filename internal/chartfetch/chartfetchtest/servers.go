// Package chartfetchtest serves Helm charts from loopback for tests: a
// chart repository (index.yaml and archives, over httptest) and an OCI
// registry (go-containerregistry's, in process), both filled with charts
// the Helm SDK packages and pushes.
package chartfetchtest

import (
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	helmregistry "helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
)

// PackageChart packages a one-template chart with the Helm SDK into dir
// and returns the archive's path.
func PackageChart(t testing.TB, dir, name, version, template string) string {
	t.Helper()
	c := &chart.Chart{
		Metadata:  &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version},
		Values:    map[string]any{"replicas": 1},
		Raw:       []*chart.File{{Name: "values.yaml", Data: []byte("replicas: 1\n")}},
		Templates: []*chart.File{{Name: "templates/all.yaml", Data: []byte(template)}},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := chartutil.Save(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// HelmRepo serves dir (packaged charts and the index.yaml the Helm SDK
// writes for them) over HTTP on loopback and counts the requests.
func HelmRepo(t testing.TB, dir string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	srv := httptest.NewServer(nil)
	idx, err := repo.IndexDirectory(dir, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	files := http.FileServer(http.Dir(dir))
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		files.ServeHTTP(w, r)
	})
	t.Cleanup(srv.Close)
	return srv, &hits
}

// OCIRegistry runs go-containerregistry's registry on loopback and pushes
// the archive to it with Helm's registry client; it returns the repoURL
// (oci://host/charts) Argo CD would name.
func OCIRegistry(t testing.TB, archive, name, version string) string {
	t.Helper()
	repoURL, _ := OCIRegistryHits(t, archive, name, version)
	return repoURL
}

// OCIRegistryHits is OCIRegistry, and counts the requests made after the
// push.
func OCIRegistryHits(t testing.TB, archive, name, version string) (string, *atomic.Int64) {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	repoURL := "oci://" + strings.TrimPrefix(srv.URL, "http://") + "/charts"
	PushOCI(t, repoURL, archive, name, version)
	hits.Store(0)
	return repoURL, &hits
}

// PushOCI pushes another chart archive to a registry OCIRegistry started.
func PushOCI(t testing.TB, repoURL, archive, name, version string) {
	t.Helper()
	client, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP(), helmregistry.ClientOptWriter(&bytes.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(data, strings.TrimPrefix(repoURL, "oci://")+"/"+name+":"+version); err != nil {
		t.Fatalf("push to the test registry: %v", err)
	}
}
