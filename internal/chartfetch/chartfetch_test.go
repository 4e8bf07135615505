package chartfetch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tug-gitops/tug/internal/chartfetch/chartfetchtest"
)

const configMap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}'}\ndata: {replicas: '{{ .Values.replicas }}'}\n"

// TestFetchFromHelmRepository: a chart is found through the repository's
// index.yaml (an exact version and a constraint), expanded into the cache,
// and an exact version is then read from the cache without a request.
func TestFetchFromHelmRepository(t *testing.T) {
	charts := t.TempDir()
	chartfetchtest.PackageChart(t, charts, "web", "1.2.0", configMap)
	chartfetchtest.PackageChart(t, charts, "web", "1.3.0", configMap)
	srv, hits := chartfetchtest.HelmRepo(t, charts)
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
	archive := chartfetchtest.PackageChart(t, t.TempDir(), "api", "0.4.1", configMap)
	repoURL := chartfetchtest.OCIRegistry(t, archive, "api", "0.4.1")
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
