package lab

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tug-gitops/tug/internal/tools"
)

// Without Node the lab keeps the API-only argocd and says why and how to
// fix it, instead of failing.
func TestArgoCDUIFallsBackToAPIOnly(t *testing.T) {
	mods := t.TempDir()
	for _, m := range []string{"kube", "kine", "argocd", "gitea"} {
		os.MkdirAll(filepath.Join(mods, m), 0o755)
		os.WriteFile(filepath.Join(mods, m, "go.mod"), []byte("module example.com/"+m+"\n"), 0o644)
	}
	t.Setenv("PATH", t.TempDir()) // no node, no npm
	t.Setenv("TUG_LAB_NO_UI", "")
	l := &Lab{opts: Options{
		Tools: &tools.Builder{ModulesDir: mods, CacheDir: t.TempDir()},
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}}
	bins := map[tools.Tool]string{tools.ArgoCD: "/cache/argocd-api-only/argocd"}
	if err := l.useArgoCDUI(context.Background(), bins); err != nil {
		t.Fatalf("a UI that cannot be built must not fail the lab: %v", err)
	}
	if bins[tools.ArgoCD] != "/cache/argocd-api-only/argocd" || l.argoUI {
		t.Fatalf("argocd = %s (ui %v), want the API-only binary", bins[tools.ArgoCD], l.argoUI)
	}
	if len(l.status.Notices) != 1 || !strings.Contains(l.status.Notices[0], "node is not on PATH") || !strings.Contains(l.status.Notices[0], "fix:") {
		t.Fatalf("notices %q: want why and how to fix it", l.status.Notices)
	}
}

func TestArgoCDUIOffOnRequest(t *testing.T) {
	t.Setenv("TUG_LAB_NO_UI", "1")
	l := &Lab{opts: Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	bins := map[tools.Tool]string{tools.ArgoCD: "api-only"}
	if err := l.useArgoCDUI(context.Background(), bins); err != nil || bins[tools.ArgoCD] != "api-only" || len(l.status.Notices) != 1 {
		t.Fatalf("err %v, argocd %s, notices %q", err, bins[tools.ArgoCD], l.status.Notices)
	}
}
