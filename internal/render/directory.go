package render

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/argoproj/argo-cd/v3/util/glob"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// DirectoryOptions mirror spec.source.directory.
type DirectoryOptions struct {
	Recurse bool
	Include string // glob, or {a,b} list, matched against the path relative to dir
	Exclude string
	// MaxFileSize caps each file read; 0 means 4 MiB.
	MaxFileSize int64
}

// Directory reads the plain manifests (.yaml, .yml, .json) in dir as Argo CD
// does for a directory source.
func Directory(dir string, opts DirectoryOptions) ([]*unstructured.Unstructured, error) {
	objs, _, err := DirectoryWithFiles(dir, opts)
	return objs, err
}

// DirectoryWithFiles is Directory that also returns the files it read.
func DirectoryWithFiles(dir string, opts DirectoryOptions) ([]*unstructured.Unstructured, []string, error) {
	var files []string
	limit := opts.MaxFileSize
	if limit == 0 {
		limit = 4 << 20
	}
	var objs []*unstructured.Unstructured
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && (!opts.Recurse || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		ext := strings.ToLower(filepath.Ext(path))
		if ext != ".yaml" && ext != ".yml" && ext != ".json" {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if opts.Include != "" && !globAny(opts.Include, rel) || opts.Exclude != "" && globAny(opts.Exclude, rel) {
			return nil
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() || st.Size() > limit {
			return fmt.Errorf("%s: not a regular file or larger than %d bytes", rel, limit)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, path)
		got, err := DecodeManifests(data)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		objs = append(objs, got...)
		return nil
	})
	return objs, files, err
}

// globAny matches Argo CD's include/exclude syntax: a glob or "{a,b}".
func globAny(pattern, path string) bool {
	pats := []string{pattern}
	if strings.HasPrefix(pattern, "{") && strings.HasSuffix(pattern, "}") {
		pats = strings.Split(strings.Trim(pattern, "{}"), ",")
	}
	for _, p := range pats {
		if glob.Match(strings.TrimSpace(p), path) || glob.Match(strings.TrimSpace(p), filepath.Base(path)) {
			return true
		}
	}
	return false
}
