package chartfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MaxFileSize bounds a downloaded value file.
const MaxFileSize = 8 << 20

// fileTimeout bounds one value file's download.
const fileTimeout = 30 * time.Second

// StatusError is a download the server answered with an HTTP error status.
type StatusError struct {
	URL    string
	Status string // "404 Not Found"
	Code   int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s answered %s", e.URL, e.Status)
}

// File returns the path of a copy of the http(s) URL (a remote Helm value
// file, which Argo CD lets helm download) in the cache. Within one Cache
// a URL is downloaded once; a copy from an earlier run is revalidated with
// a conditional request (ETag / Last-Modified), so a file that changed on
// the server is not read stale and one that did not is not downloaded
// again.
func (c *Cache) File(ctx context.Context, url string) (string, error) {
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return "", fmt.Errorf("%s: only http and https value files can be downloaded", url)
	}
	sum := sha256.Sum256([]byte(url))
	key := "files/" + hex.EncodeToString(sum[:12])
	lock := c.lock(key)
	lock.Lock()
	defer lock.Unlock()
	dest := filepath.Join(c.Dir, filepath.FromSlash(key))
	c.mu.Lock()
	done := c.files[url]
	c.mu.Unlock()
	if done {
		return dest, nil
	}
	ctx, cancel := context.WithTimeout(ctx, fileTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	validator, _ := os.ReadFile(dest + ".validator")
	if _, err := os.Stat(dest); err == nil && len(validator) > 0 {
		name, value, _ := strings.Cut(string(validator), "\n")
		req.Header.Set(name, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && len(validator) > 0:
	case resp.StatusCode != http.StatusOK:
		return "", &StatusError{URL: url, Status: resp.Status, Code: resp.StatusCode}
	default:
		data, err := io.ReadAll(io.LimitReader(resp.Body, MaxFileSize+1))
		if err != nil {
			return "", fmt.Errorf("GET %s: %w", url, err)
		}
		if len(data) > MaxFileSize {
			return "", fmt.Errorf("GET %s: larger than %d MiB, the limit for a value file", url, MaxFileSize>>20)
		}
		if err := writeAtomic(dest, data); err != nil {
			return "", err
		}
		v := ""
		if etag := resp.Header.Get("ETag"); etag != "" {
			v = "If-None-Match\n" + etag
		} else if lm := resp.Header.Get("Last-Modified"); lm != "" {
			v = "If-Modified-Since\n" + lm
		}
		if err := writeAtomic(dest+".validator", []byte(v)); err != nil {
			return "", err
		}
	}
	c.mu.Lock()
	if c.files == nil {
		c.files = map[string]bool{}
	}
	c.files[url] = true
	c.mu.Unlock()
	return dest, nil
}

// IsNotFound reports whether err is a download the server answered 404
// (or 410) to.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusGone)
}

// writeAtomic writes through a temporary file beside p and a rename, so a
// reader never sees half a file.
func writeAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
