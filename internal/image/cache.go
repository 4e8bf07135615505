package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/yaml"
)

// Archive builds the image for s, tags it with refs and writes it as an
// image tarball (docker-archive format, which `ctr images import` reads)
// into cacheDir, unless a tarball of the same source is there already.
// The cache key covers go.mod, go.sum and every file under apps/, the
// app, the version, the refs and the Go version: a changed source builds
// anew, anything else is reused.
func Archive(ctx context.Context, s Spec, refs []string, cacheDir string) (string, error) {
	key, err := sourceKey(s, refs)
	if err != nil {
		return "", err
	}
	path := filepath.Join(cacheDir, fmt.Sprintf("%s-%s-%s.tar", s.App, safe(s.Version), key))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	img, err := Build(ctx, s)
	if err != nil {
		return "", err
	}
	return path, WriteArchive(path, img, refs)
}

// WriteArchive writes img under refs to path, atomically.
func WriteArchive(path string, img v1.Image, refs []string) error {
	tagged := map[name.Reference]v1.Image{}
	for _, r := range refs {
		ref, err := name.ParseReference(r)
		if err != nil {
			return fmt.Errorf("image: bad reference %q: %w", r, err)
		}
		tagged[ref] = img
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".image-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tarball.MultiRefWrite(tagged, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ':' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

func sourceKey(s Spec, refs []string) (string, error) {
	h := sha256.New()
	var files []string
	for _, f := range []string{"go.mod", "go.sum"} {
		files = append(files, filepath.Join(s.RepoRoot, f))
	}
	err := filepath.WalkDir(filepath.Join(s.RepoRoot, "apps"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	sort.Strings(files)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(s.RepoRoot, f)
		fmt.Fprintf(h, "%s\x00", rel)
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", err
		}
	}
	fmt.Fprintf(h, "\x00%s|%s|%d|%s|%s|%s", s.App, s.Version, s.Port, strings.Join(refs, ","), runtime.Version(), runtime.GOARCH)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// ChartImages returns, for each chart under charts/ whose image is built
// from apps/<chart>, every image reference its values files name
// (values.yaml's image.repository with each values*.yaml's image.tag).
func ChartImages(repoRoot string) (map[string][]string, error) {
	charts, err := os.ReadDir(filepath.Join(repoRoot, "charts"))
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, c := range charts {
		if !c.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(repoRoot, "apps", c.Name())); err != nil {
			continue
		}
		refs, err := chartRefs(filepath.Join(repoRoot, "charts", c.Name()))
		if err != nil {
			return nil, err
		}
		if len(refs) > 0 {
			out[c.Name()] = refs
		}
	}
	return out, nil
}

type values struct {
	Image struct {
		Repository string `json:"repository"`
		Tag        any    `json:"tag"`
	} `json:"image"`
}

func chartRefs(dir string) ([]string, error) {
	var base values
	if err := readValues(filepath.Join(dir, "values.yaml"), &base); err != nil {
		return nil, err
	}
	files, _ := filepath.Glob(filepath.Join(dir, "values*.yaml"))
	sort.Strings(files)
	seen := map[string]bool{}
	var refs []string
	for _, f := range files {
		var v values
		if err := readValues(f, &v); err != nil {
			return nil, err
		}
		repo := v.Image.Repository
		if repo == "" {
			repo = base.Image.Repository
		}
		if repo == "" || v.Image.Tag == nil {
			continue
		}
		tag, ok := v.Image.Tag.(string)
		if !ok {
			return nil, fmt.Errorf("%s: image.tag is %v, not a string: quote it (\"%v\"), or YAML reads 0.10 as 0.1", f, v.Image.Tag, v.Image.Tag)
		}
		ref := repo + ":" + tag
		if !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	return refs, nil
}

func readValues(path string, v *values) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Tag is the tag part of an image reference ("0.2.0" of "ghcr.io/x/y:0.2.0").
func Tag(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}
