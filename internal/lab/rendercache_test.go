package lab

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/bootstrap"
	"github.com/tug-gitops/tug/internal/fsutil"
)

// The cache gives back exactly what a render gives, renders again when a
// file of infra/argocd changes, and never keeps the render of a
// kustomization that may read files it does not digest.
func TestRenderCacheGivesWhatARenderGives(t *testing.T) {
	root := t.TempDir()
	if err := fsutil.CopyTree(filepath.Join("..", "..", bootstrap.InstallDir), filepath.Join(root, bootstrap.InstallDir)); err != nil {
		t.Fatal(err)
	}
	c := renderCache{dir: t.TempDir()}
	fresh, err := bootstrap.Render(root)
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.argoCD(root)
	if err != nil {
		t.Fatal(err)
	}
	if n := cached(t, c); n != 1 {
		t.Fatalf("%d files in the cache after one render, want 1", n)
	}
	second, err := c.argoCD(root)
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range [][]any{toAny(first), toAny(second)} {
		if !reflect.DeepEqual(got, toAny(fresh)) {
			t.Fatalf("call %d: the cached objects differ from a fresh render", i+1)
		}
	}

	patch := filepath.Join(root, bootstrap.InstallDir, "patches", "argocd-cm.yaml")
	data, err := os.ReadFile(patch)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(patch, append(data, []byte("  tug.test/changed: \"yes\"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := c.argoCD(root)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(toAny(changed), toAny(fresh)) {
		t.Error("a changed patch gave the cached objects of before")
	}
	if n := cached(t, c); n != 2 {
		t.Errorf("%d files in the cache after a change, want 2", n)
	}

	kust := filepath.Join(root, bootstrap.InstallDir, "kustomization.yaml")
	k, err := os.ReadFile(kust)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kust, append(k, []byte("# see https://argo-cd.readthedocs.io\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.argoCD(root); err != nil {
		t.Fatal(err)
	}
	if n := cached(t, c); n != 2 {
		t.Errorf("a kustomization naming a URL was cached (%d files)", n)
	}
}

func cached(t *testing.T, c renderCache) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(c.dir, "argocd-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func toAny(objs []*unstructured.Unstructured) []any {
	out := make([]any, len(objs))
	for i, o := range objs {
		out[i] = o.Object
	}
	return out
}

// BenchmarkArgoCDRender prints a render of infra/argocd beside a read of
// its cached objects, which is what a lab start does once it has rendered.
func BenchmarkArgoCDRender(b *testing.B) {
	root := filepath.Join("..", "..")
	c := renderCache{dir: b.TempDir()}
	if _, err := c.argoCD(root); err != nil {
		b.Fatal(err)
	}
	b.Run("render", func(b *testing.B) {
		for range b.N {
			if _, err := bootstrap.Render(root); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		for range b.N {
			if _, err := c.argoCD(root); err != nil {
				b.Fatal(err)
			}
		}
	})
}
