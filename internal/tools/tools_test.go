package tools

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeModules(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, m := range []string{"kube", "kine", "argocd", "gitea"} {
		os.MkdirAll(filepath.Join(dir, m), 0o755)
		os.WriteFile(filepath.Join(dir, m, "go.mod"), []byte("module example.com/"+m+"\n"), 0o644)
	}
	return dir
}

func TestPathChangesWithTheModulePins(t *testing.T) {
	mods := fakeModules(t)
	b := &Builder{ModulesDir: mods, CacheDir: t.TempDir()}
	before, err := b.Path(KubeAPIServer)
	if err != nil {
		t.Fatal(err)
	}
	same, _ := b.Path(KubeAPIServer)
	other, _ := b.Path(Kine)
	if before != same || before == other {
		t.Fatalf("paths: %s, %s, %s", before, same, other)
	}
	os.WriteFile(filepath.Join(mods, "kube", "go.sum"), []byte("k8s.io/api v0.34.4 h1:x\n"), 0o644)
	after, _ := b.Path(KubeAPIServer)
	if after == before {
		t.Fatal("a changed go.sum must give a new cache key, so the binary is rebuilt")
	}
	if !strings.HasPrefix(after, b.CacheDir) || filepath.Base(after) != "kube-apiserver" {
		t.Fatalf("unexpected layout %s", after)
	}
}

func TestEnsureReusesACachedBinaryWithoutBuilding(t *testing.T) {
	b := &Builder{ModulesDir: fakeModules(t), CacheDir: t.TempDir()}
	p, _ := b.Path(Helm)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755)
	// The fake module cannot build anything: Ensure must not try.
	got, err := b.Ensure(context.Background(), Helm)
	if err != nil || got != p {
		t.Fatalf("Ensure = %q, %v; want the cached %q", got, err, p)
	}
}

func TestBuildFailureSaysWhatAndLeavesNothing(t *testing.T) {
	b := &Builder{ModulesDir: fakeModules(t), CacheDir: t.TempDir()}
	_, err := b.Ensure(context.Background(), Kine)
	if err == nil || !strings.Contains(err.Error(), "build kine") {
		t.Fatalf("want a build error naming the tool, got %v", err)
	}
	p, _ := b.Path(Kine)
	if _, statErr := os.Stat(p); statErr == nil {
		t.Fatal("a failed build left a binary behind")
	}
	if _, statErr := os.Stat(p + ".tmp"); statErr == nil {
		t.Fatal("a failed build left a temporary file behind")
	}
}

func TestFindModulesDir(t *testing.T) {
	if _, err := FindModulesDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "--repo") {
		t.Fatalf("outside a clone: want an error saying what to do, got %v", err)
	}
	dir, err := FindModulesDir(".")
	if err != nil || !strings.HasSuffix(dir, filepath.Join("lab", "tools")) {
		t.Fatalf("FindModulesDir(.) = %q, %v", dir, err)
	}
}

func TestUnknownTool(t *testing.T) {
	if _, err := (&Builder{ModulesDir: t.TempDir()}).Path("nope"); err == nil {
		t.Fatal("unknown tool accepted")
	}
}
