// Package chartfetch downloads the Helm charts Argo CD would download — from
// Helm repositories (index.yaml) and OCI registries — with the Helm SDK, into
// a cache on disk, and finds them there again. Only `tug validate --online`
// uses it: validation is offline by default.
package chartfetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
)

// timeout bounds one download (an index or a chart).
const timeout = 2 * time.Minute

// Cache holds expanded charts under Dir, one folder per repository, chart
// and version, and downloaded value files under Dir/files.
type Cache struct {
	Dir string

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	files map[string]bool // URLs File downloaded or revalidated
	// charts are the cache keys Fetch resolved through this Cache: a
	// constraint is resolved once per Cache (one run), not per Application.
	charts map[string]bool
}

// DefaultDir is $XDG_CACHE_HOME/tug/charts (or ~/.cache/tug/charts).
func DefaultDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "tug", "charts")
}

// Fetch returns the directory of chart at version from repoURL, expanded
// in the cache: from the cache when an exact version is there, else
// downloaded. repoURL is an http(s) Helm repository, or an OCI registry
// path (oci://host/path, or host/path as Argo CD's OCI Helm sources write
// it). Plain HTTP is used for OCI registries on loopback only.
func (c *Cache) Fetch(ctx context.Context, repoURL, chart, version string) (string, error) {
	key := cacheKey(repoURL, chart, version)
	lock := c.lock(key)
	lock.Lock()
	defer lock.Unlock()
	dest := filepath.Join(c.Dir, key)
	dir := filepath.Join(dest, chart)
	exact := false
	if _, err := semver.StrictNewVersion(strings.TrimPrefix(version, "v")); err == nil {
		exact = true
	}
	c.mu.Lock()
	done := c.charts[key]
	c.mu.Unlock()
	if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err == nil && (exact || done) {
		return dir, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var data []byte
	var err error
	if isOCI(repoURL) {
		data, err = pullOCI(repoURL, chart, version)
	} else {
		data, err = downloadFromRepo(c.Dir, repoURL, chart, version)
	}
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", err
	}
	// Expand beside the cache entry and move it into place, so a reader
	// never sees half a chart.
	tmp, err := os.MkdirTemp(c.Dir, ".fetch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := chartutil.Expand(tmp, bytes.NewReader(data)); err != nil {
		return "", fmt.Errorf("chart %s %s from %s: %w", chart, version, repoURL, err)
	}
	if _, err := os.Stat(filepath.Join(tmp, chart, "Chart.yaml")); err != nil {
		return "", fmt.Errorf("chart %s %s from %s: the archive holds no chart named %s", chart, version, repoURL, chart)
	}
	if err := os.RemoveAll(dest); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.charts == nil {
		c.charts = map[string]bool{}
	}
	c.charts[key] = true
	c.mu.Unlock()
	return dir, nil
}

func (c *Cache) lock(key string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.locks == nil {
		c.locks = map[string]*sync.Mutex{}
	}
	if c.locks[key] == nil {
		c.locks[key] = &sync.Mutex{}
	}
	return c.locks[key]
}

func cacheKey(repoURL, chart, version string) string {
	sum := sha256.Sum256([]byte(repoURL + "\x00" + chart + "\x00" + version))
	return chart + "-" + hex.EncodeToString(sum[:8])
}

// isOCI: Argo CD takes a Helm source's repoURL without a scheme (or with
// oci://) as an OCI registry.
func isOCI(repoURL string) bool {
	return strings.HasPrefix(repoURL, "oci://") || !strings.Contains(repoURL, "://")
}

func pullOCI(repoURL, chart, version string) ([]byte, error) {
	base := strings.TrimSuffix(strings.TrimPrefix(repoURL, "oci://"), "/")
	opts := []registry.ClientOption{registry.ClientOptWriter(&bytes.Buffer{})}
	if host, _, _ := strings.Cut(base, "/"); isLoopback(host) {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	client, err := registry.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	if _, err := semver.StrictNewVersion(strings.TrimPrefix(version, "v")); err != nil {
		// A constraint (a dependency's "~1.2.0"): the newest tag that
		// satisfies it, as helm dependency build picks.
		if version, err = newestTag(client, base+"/"+chart, version); err != nil {
			return nil, err
		}
	}
	ref := base + "/" + chart + ":" + version
	res, err := client.Pull(ref)
	if err != nil {
		return nil, fmt.Errorf("pull oci://%s: %w", ref, err)
	}
	return res.Chart.Data, nil
}

// newestTag picks the highest semver tag of an OCI repository that
// satisfies constraint (empty: any).
func newestTag(client *registry.Client, ref, constraint string) (string, error) {
	if constraint == "" {
		constraint = "*"
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return "", fmt.Errorf("version %q of oci://%s is neither a version nor a constraint: %w", constraint, ref, err)
	}
	tags, err := client.Tags(ref) // semver tags, newest first
	if err != nil {
		return "", fmt.Errorf("list the tags of oci://%s: %w", ref, err)
	}
	for _, tag := range tags {
		if v, err := semver.NewVersion(tag); err == nil && c.Check(v) {
			return tag, nil
		}
	}
	return "", fmt.Errorf("no tag of oci://%s satisfies %q (tags: %s)", ref, constraint, strings.Join(tags, ", "))
}

// downloadFromRepo resolves version in the repository's index.yaml (exact
// or a constraint, as helm does) and downloads the chart archive.
func downloadFromRepo(cacheDir, repoURL, chart, version string) ([]byte, error) {
	getters := getter.Providers{{Schemes: []string{"http", "https"}, New: getter.NewHTTPGetter}}
	r, err := repo.NewChartRepository(&repo.Entry{Name: cacheKey(repoURL, "index", ""), URL: repoURL}, getters)
	if err != nil {
		return nil, err
	}
	r.CachePath = filepath.Join(cacheDir, "index")
	idxPath, err := r.DownloadIndexFile()
	if err != nil {
		return nil, fmt.Errorf("%s is not a Helm repository or cannot be reached: %w", repoURL, err)
	}
	idx, err := repo.LoadIndexFile(idxPath)
	if err != nil {
		return nil, fmt.Errorf("%s/index.yaml: %w", repoURL, err)
	}
	cv, err := idx.Get(chart, version)
	if err != nil {
		return nil, fmt.Errorf("chart %s version %q is not in %s", chart, version, repoURL)
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart %s %s in %s has no download URL", chart, cv.Version, repoURL)
	}
	chartURL, err := repo.ResolveReferenceURL(repoURL, cv.URLs[0])
	if err != nil {
		return nil, err
	}
	g, err := getter.NewHTTPGetter(getter.WithTimeout(timeout), getter.WithURL(repoURL))
	if err != nil {
		return nil, err
	}
	buf, err := g.Get(chartURL)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", chartURL, err)
	}
	return buf.Bytes(), nil
}

func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
