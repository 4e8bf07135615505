package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/tug-gitops/tug/internal/bootstrap"
	"github.com/tug-gitops/tug/internal/fsutil"
)

// renderCache keeps what infra/argocd renders to, by a digest of its
// files and of the kustomize that renders them. Rendering Argo CD's
// install manifests took 1–4 s of CPU on two cores, at every start, before
// the repo-server could start; reading the cached objects takes tens of
// milliseconds.
type renderCache struct{ dir string }

func defaultRenderCache() renderCache {
	return renderCache{dir: userCache("render")}
}

// argoCD renders repoRoot's infra/argocd, or reads what it rendered to
// before. A kustomization that may read anything outside its folder (a
// remote resource or a path out of it) is always rendered.
func (c renderCache) argoCD(repoRoot string) ([]*unstructured.Unstructured, error) {
	dir := filepath.Join(repoRoot, bootstrap.InstallDir)
	key, ok, err := renderKey(dir)
	if err != nil || !ok {
		return bootstrap.Render(repoRoot)
	}
	path := filepath.Join(c.dir, "argocd-"+key+".json")
	if objs, err := readObjects(path); err == nil {
		return objs, nil
	}
	objs, err := bootstrap.Render(repoRoot)
	if err != nil {
		return nil, err
	}
	// A cache that cannot be written costs the next start a render, no more.
	_ = writeObjects(path, objs)
	return objs, nil
}

// renderKey digests every file under dir with the kustomize version. ok is
// false when the kustomization may read something the digest misses.
func renderKey(dir string) (key string, ok bool, err error) {
	h := sha256.New()
	fmt.Fprintf(h, "render v1\nkustomize %s\n", kustomizeVersion())
	local := true
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			local = false // a symbolic link may point anywhere
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasPrefix(filepath.Base(rel), "kustomization") && (strings.Contains(string(data), "://") || strings.Contains(string(data), "..")) {
			local = false
		}
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(data))
		h.Write(data)
		return nil
	})
	if err != nil || !local {
		return "", false, err
	}
	return hex.EncodeToString(h.Sum(nil))[:32], true, nil
}

func kustomizeVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "sigs.k8s.io/kustomize/api" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func readObjects(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// Kubernetes' JSON decoder keeps whole numbers int64, as the render
	// made them (encoding/json would make them float64).
	var raw []any
	if err := utiljson.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	objs := make([]*unstructured.Unstructured, len(raw))
	for i, o := range raw {
		m, ok := o.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: item %d is not an object", path, i)
		}
		objs[i] = &unstructured.Unstructured{Object: m}
	}
	return objs, nil
}

func writeObjects(path string, objs []*unstructured.Unstructured) error {
	raw := make([]map[string]any, len(objs))
	for i, o := range objs {
		raw[i] = o.Object
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, data, 0o644)
}
