package chartfetch

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	before = hits.Load()
	if _, err := c.Fetch(context.Background(), srv.URL, "web", "~1.2 || ^1.3"); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != before {
		t.Errorf("a constraint was resolved twice within one Cache (%d more requests)", hits.Load()-before)
	}
	before = hits.Load()
	if _, err := (&Cache{Dir: c.Dir}).Fetch(context.Background(), srv.URL, "web", "~1.2 || ^1.3"); err != nil {
		t.Fatal(err)
	}
	if hits.Load() == before {
		t.Errorf("a new run did not resolve the constraint again")
	}
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

// TestFetchOCIConstraint: a version range (as a chart dependency writes
// it) is resolved to the newest matching tag of the OCI repository.
func TestFetchOCIConstraint(t *testing.T) {
	tmp := t.TempDir()
	repoURL := chartfetchtest.OCIRegistry(t, chartfetchtest.PackageChart(t, tmp, "api", "0.4.1", configMap), "api", "0.4.1")
	chartfetchtest.PushOCI(t, repoURL, chartfetchtest.PackageChart(t, tmp, "api", "0.4.7", configMap), "api", "0.4.7")
	chartfetchtest.PushOCI(t, repoURL, chartfetchtest.PackageChart(t, tmp, "api", "0.5.0", configMap), "api", "0.5.0")
	dir, err := (&Cache{Dir: t.TempDir()}).Fetch(context.Background(), repoURL, "api", "~0.4.0")
	if err != nil {
		t.Fatal(err)
	}
	assertChart(t, dir, "api", "0.4.7")
	_, err = (&Cache{Dir: t.TempDir()}).Fetch(context.Background(), repoURL, "api", "^1.0.0")
	if err == nil || !strings.Contains(err.Error(), `satisfies "^1.0.0"`) || !strings.Contains(err.Error(), "0.5.0, 0.4.7, 0.4.1") {
		t.Errorf("a range no tag satisfies: %v", err)
	}
}

// TestFile: a remote value file is downloaded into the cache once per
// run, revalidated with its ETag on the next run (a 304, not a second
// download), downloaded again when it changed; a 404 says what the URL
// answered and an oversized file is refused.
func TestFile(t *testing.T) {
	var mu sync.Mutex
	body, etag := "replicas: 3\n", `"v1"`
	var gets, full atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/values.yaml":
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			full.Add(1)
			w.Header().Set("ETag", etag)
			io.WriteString(w, body)
		case "/huge.yaml":
			w.Write(bytes.Repeat([]byte("#"), MaxFileSize+1))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	read := func(c *Cache) string {
		t.Helper()
		p, err := c.File(context.Background(), srv.URL+"/values.yaml")
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	run1 := &Cache{Dir: dir}
	if got := read(run1); got != body {
		t.Errorf("got %q", got)
	}
	read(run1)
	if gets.Load() != 1 {
		t.Errorf("%d requests in one run, want 1", gets.Load())
	}
	if got := read(&Cache{Dir: dir}); got != body || gets.Load() != 2 || full.Load() != 1 {
		t.Errorf("second run: %q, %d requests (want 2), %d full downloads (want 1: the second is a 304)", got, gets.Load(), full.Load())
	}
	mu.Lock()
	body, etag = "replicas: 5\n", `"v2"`
	mu.Unlock()
	if got := read(&Cache{Dir: dir}); got != "replicas: 5\n" {
		t.Errorf("a changed file was read stale: %q", got)
	}
	_, err := run1.File(context.Background(), srv.URL+"/missing.yaml")
	if !IsNotFound(err) || !strings.Contains(err.Error(), "GET "+srv.URL+"/missing.yaml answered 404 Not Found") {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := run1.File(context.Background(), srv.URL+"/huge.yaml"); err == nil || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Errorf("an oversized file: %v", err)
	}
}
