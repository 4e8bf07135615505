package chartfetch

import (
	"bytes"
	"context"
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
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	client, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP(), helmregistry.ClientOptWriter(&bytes.Buffer{}))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(data, host+"/charts/"+name+":"+version); err != nil {
		t.Fatalf("push to the test registry: %v", err)
	}
	return "oci://" + host + "/charts"
}

const configMap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}'}\ndata: {replicas: '{{ .Values.replicas }}'}\n"

// TestFetchFromHelmRepository: a chart is found through the repository's
// index.yaml (an exact version and a constraint), expanded into the cache,
// and an exact version is then read from the cache without a request.
func TestFetchFromHelmRepository(t *testing.T) {
	charts := t.TempDir()
	PackageChart(t, charts, "web", "1.2.0", configMap)
	PackageChart(t, charts, "web", "1.3.0", configMap)
	srv, hits := HelmRepo(t, charts)
	c := &Cache{Dir: t.TempDir()}

	dir, err := c.Fetch(context.Background(), srv.URL, "web", "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	assertChart(t, dir, "web", "1.2.0")
	if hits.Load() != 2 {
		t.Errorf("%d requests, want 2 (index.yaml and the archive)", hits.Load())
	}
	before := hits.Load()
	if _, err := c.Fetch(context.Background(), srv.URL, "web", "1.2.0"); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != before {
		t.Errorf("a cached exact version was downloaded again")
	}
	dir, err = c.Fetch(context.Background(), srv.URL, "web", "~1.2 || ^1.3")
	if err != nil {
		t.Fatal(err)
	}
	assertChart(t, dir, "web", "1.3.0")
	if _, err := c.Fetch(context.Background(), srv.URL, "web", "9.9.9"); err == nil || !strings.Contains(err.Error(), `version "9.9.9" is not in`) {
		t.Errorf("a missing version: %v", err)
	}
}

// TestFetchFromOCIRegistry: a chart pushed to an in-process OCI registry
// with Helm's client is pulled by oci:// URL and by the scheme-less
// host/path Argo CD also accepts.
func TestFetchFromOCIRegistry(t *testing.T) {
	archive := PackageChart(t, t.TempDir(), "api", "0.4.1", configMap)
	repoURL := OCIRegistry(t, archive, "api", "0.4.1")
	for _, u := range []string{repoURL, strings.TrimPrefix(repoURL, "oci://")} {
		c := &Cache{Dir: t.TempDir()}
		dir, err := c.Fetch(context.Background(), u, "api", "0.4.1")
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		assertChart(t, dir, "api", "0.4.1")
	}
	if _, err := (&Cache{Dir: t.TempDir()}).Fetch(context.Background(), repoURL, "api", "0.5.0"); err == nil {
		t.Errorf("a tag the registry does not have was pulled")
	}
}

func assertChart(t *testing.T, dir, name, version string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "name: "+name) || !strings.Contains(string(data), "version: "+version) {
		t.Errorf("%s/Chart.yaml is not %s %s:\n%s", dir, name, version, data)
	}
	if _, err := os.Stat(filepath.Join(dir, "templates", "all.yaml")); err != nil {
		t.Errorf("the chart's template was not expanded: %v", err)
	}
}
