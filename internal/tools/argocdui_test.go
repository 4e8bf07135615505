package tools

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The vendored argo-ui replaces the git dependency in both files yarn
// reads, and nothing else changes.
func TestRewriteArgoUIDependency(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"package.json", "yarn.lock"} {
		if err := copyFile(filepath.Join("testdata", "argocd-ui", f), filepath.Join(dir, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := rewriteArgoUIDependency(dir); err != nil {
		t.Fatal(err)
	}
	pkg, _ := os.ReadFile(filepath.Join(dir, "package.json"))
	lock, _ := os.ReadFile(filepath.Join(dir, "yarn.lock"))
	if !strings.Contains(string(pkg), `"argo-ui": "file:../argo-ui"`) || strings.Contains(string(pkg), "git+") {
		t.Errorf("package.json not rewritten:\n%s", pkg)
	}
	if !strings.Contains(string(lock), "\"argo-ui@file:../argo-ui\":\n  version \"1.0.0\"\n  dependencies:") {
		t.Errorf("yarn.lock entry not rewritten:\n%s", lock)
	}
	if strings.Contains(string(lock), "git+https") || !strings.Contains(string(lock), "buffer-6.0.3.tgz") {
		t.Errorf("yarn.lock: the git resolution must go and the rest stay:\n%s", lock)
	}
	// A second rewrite finds nothing to rewrite and says which file and why.
	err := rewriteArgoUIDependency(dir)
	if err == nil || !strings.Contains(err.Error(), "package.json") || !strings.Contains(err.Error(), "no longer matches") {
		t.Fatalf("rewriting twice: %v", err)
	}
}

// Without Node the UI is not built, fast, and the error says how to fix it;
// the lab falls back to the API-only argocd on ErrUIUnavailable.
func TestEnsureArgoCDUIWithoutNode(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	b := &Builder{ModulesDir: fakeModules(t), CacheDir: t.TempDir()}
	_, err := b.EnsureArgoCDUI(context.Background())
	var ue *UIError
	if !errors.Is(err, ErrUIUnavailable) || !errors.As(err, &ue) {
		t.Fatalf("err = %v, want a UIError", err)
	}
	if !strings.Contains(ue.Reason, "node is not on PATH") || !strings.Contains(ue.Fix, "Node.js") {
		t.Fatalf("unhelpful: %v", err)
	}
}

func TestArgoCDUIPathIsKeyedApartFromArgoCD(t *testing.T) {
	b := &Builder{ModulesDir: fakeModules(t), CacheDir: t.TempDir()}
	api, _ := b.Path(ArgoCD)
	ui, err := b.ArgoCDUIPath()
	if err != nil {
		t.Fatal(err)
	}
	if api == ui || filepath.Base(ui) != "argocd" || !strings.HasPrefix(filepath.Base(filepath.Dir(ui)), "argocd-ui-") {
		t.Fatalf("API-only %s, with UI %s", api, ui)
	}
}

func TestCheckSHA256(t *testing.T) {
	p := filepath.Join(t.TempDir(), "argo-ui.tar.gz")
	os.WriteFile(p, []byte("not the archive"), 0o644)
	err := checkSHA256(p, argoUISHA256)
	if !errors.Is(err, ErrUIUnavailable) || !strings.Contains(err.Error(), argoUISHA256) {
		t.Fatalf("a tampered archive: %v", err)
	}
}

// A registry that does not answer is found out in seconds, with the fix,
// rather than after yarn's minutes of retries.
func TestRegistryDown(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("npm_config_registry", "http://"+addr+"/")
	err = registryReachable(context.Background())
	if !errors.Is(err, ErrUIUnavailable) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "fix:") {
		t.Fatalf("registry down: %v", err)
	}
}
