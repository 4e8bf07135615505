package tools

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkArgoCDUIColdBuild builds argocd with the web UI into an empty
// tug cache, yarn's package cache included, as a first `lab up` does; the
// Go build cache is the user's. Each step's time is logged. It takes
// minutes and downloads from npm, so it runs only with
// TUG_BENCH_UI_COLD=1:
//
//	TUG_BENCH_UI_COLD=1 go test -run '^$' -bench ArgoCDUIColdBuild -benchtime 1x -timeout 60m ./internal/tools
func BenchmarkArgoCDUIColdBuild(b *testing.B) {
	if os.Getenv("TUG_BENCH_UI_COLD") == "" {
		b.Skip("minutes long and downloads from npm: set TUG_BENCH_UI_COLD=1")
	}
	mods, err := FindModulesDir(".")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	for b.Loop() {
		bl := &Builder{ModulesDir: mods, CacheDir: filepath.Join(b.TempDir(), "bin"), Log: log}
		if _, err := bl.EnsureArgoCDUI(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
