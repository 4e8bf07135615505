package tools

// Both argocd binaries, the API-only one and the one with the web UI, are
// built from one copy of the argo-cd module at a fixed path, through a
// module that replaces github.com/argoproj/argo-cd/v3 by that copy. Go's
// build cache keys a package by its folder (without -trimpath), so the UI
// build, which adds the built UI by -overlay to the same folders, reuses
// every package the API-only build compiled and recompiles only the `ui`
// package (//go:embed dist/app) and the packages importing it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tug-gitops/tug/internal/fsutil"
)

// argoCDSourceLayout names how the source tree below is laid out; it is
// part of argocd's cache key, so a change rebuilds the binary.
const argoCDSourceLayout = "argocd-src/1"

// argoCDSource is the tree argocd is built from.
type argoCDSource struct {
	dir     string // writable copy of the argo-cd module, never changed once made
	build   string // the generated module: go build runs here
	modDir  string // the argo-cd module in the module cache (read-only)
	version string // e.g. 3.2.11
	date    string // the module version's time, as buildDate
	kubectl string // k8s.io/client-go's version, as kubectlVersion
}

// ldflags stamps the version as upstream's release build does.
func (s *argoCDSource) ldflags() string {
	return strings.NewReplacer("{{pkg}}", argoCDModule+"/common", "{{version}}", s.version,
		"{{date}}", s.date, "{{kubectl}}", s.kubectl).Replace(argoCDLdflagsTemplate)
}

// argoCDSource returns the source tree for argocd's pinned version, making
// it first if needed: under a file lock, in a folder keyed like argocd's
// binary, marked complete only once the copy and the module are written.
func (b *Builder) argoCDSource(ctx context.Context) (*argoCDSource, error) {
	// Keyed without the settle handler, which the binary's build adds by
	// -overlay: the tree is the same with or without it.
	r := recipes[ArgoCD]
	r.settle = false
	key, err := b.key(r)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(filepath.Dir(b.cacheDir()), "argocd-src", key)
	s := &argoCDSource{dir: filepath.Join(root, "argo-cd"), build: filepath.Join(root, "build")}
	if err := s.locate(ctx, filepath.Join(b.ModulesDir, recipes[ArgoCD].module)); err != nil {
		return nil, err
	}
	done := filepath.Join(root, "complete")
	if _, err := os.Stat(done); err == nil {
		return s, nil
	}
	unlock, err := fsutil.Lock(ctx, root+".lock", true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(done); err == nil {
		return s, nil
	}
	t := time.Now()
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	if err := copyTree(ctx, s.modDir, s.dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.build, 0o755); err != nil {
		return nil, err
	}
	toolMod := filepath.Join(b.ModulesDir, recipes[ArgoCD].module)
	for _, f := range []string{"go.mod", "go.sum"} {
		err := copyFile(filepath.Join(toolMod, f), filepath.Join(s.build, f), 0o644)
		if err != nil && !(f == "go.sum" && errors.Is(err, os.ErrNotExist)) {
			return nil, err
		}
	}
	if err := runCmd(ctx, s.build, os.Environ(), "go", "mod", "edit", "-replace", argoCDModule+"="+s.dir); err != nil {
		return nil, err
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return nil, err
	}
	b.logger().Info("argocd source", "copied to", s.dir, "took", time.Since(t).Round(time.Second))
	return s, nil
}

// locate finds argo-cd's module source through the argocd tool module, so
// the UI and the Go code are the pinned version's.
func (s *argoCDSource) locate(ctx context.Context, toolMod string) error {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-json", argoCDModule, "k8s.io/client-go")
	cmd.Dir = toolMod
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return fmt.Errorf("go list -m %s in %s: %w", argoCDModule, toolMod, err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m struct {
			Path, Version, Dir, Time string
			Replace                  *struct{ Version string }
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		switch m.Path {
		case argoCDModule:
			s.modDir, s.version, s.date = m.Dir, strings.TrimPrefix(m.Version, "v"), m.Time
		case "k8s.io/client-go":
			// upstream's Makefile: the last field of `go list -m k8s.io/client-go`
			s.kubectl = m.Version
			if m.Replace != nil && m.Replace.Version != "" {
				s.kubectl = m.Replace.Version
			}
		}
	}
	if s.modDir == "" {
		return fmt.Errorf("module %s has no source folder (run go mod download in %s)", argoCDModule, toolMod)
	}
	if s.date == "" {
		s.date = "1970-01-01T00:00:00Z"
	}
	return nil
}

// uiOverlay returns the `go build -overlay` entries that put the built UI
// (builtApp, a dist/app folder) in place of the copy's ui/dist/app: every
// built file is added, every file only the copy has is hidden.
func (s *argoCDSource) uiOverlay(builtApp string) (map[string]string, error) {
	app := filepath.Join(s.dir, "ui", "dist", "app")
	replace := map[string]string{}
	err := filepath.WalkDir(app, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		replace[p] = "" // hidden unless the built UI has it
		return nil
	})
	if err != nil {
		return nil, err
	}
	n := 0
	err = filepath.WalkDir(builtApp, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(builtApp, p)
		if err != nil {
			return err
		}
		replace[filepath.Join(app, rel)] = p
		n++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%s holds no files", builtApp)
	}
	return replace, nil
}
