package tools

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkArgoCDUIColdBuild builds argocd with the web UI into an empty
// tug cache, yarn's package cache included, as a first `lab up` does: the
// API-only argocd first (untimed, as the lab builds it before the UI), then
// the UI. The Go build cache is the user's. Each step is logged with its
// wall time and the CPU time used since the previous line (this process
// and its finished children: yarn, node, the compiler) and the load
// average, since on a shared machine CPU time is the comparable figure.
// It takes minutes and downloads from npm, so it runs only with
// TUG_BENCH_UI_COLD=1:
//
//	TUG_BENCH_UI_COLD=1 go test -run '^$' -bench ArgoCDUIColdBuild -benchtime 1x -timeout 60m ./internal/tools
//
// TUG_BENCH_UI_CACHE=<empty folder> keeps what it built there (a lab can
// then run on <folder>/bin through TUG_BIN_CACHE); by default it goes.
func BenchmarkArgoCDUIColdBuild(b *testing.B) {
	if os.Getenv("TUG_BENCH_UI_COLD") == "" {
		b.Skip("minutes long and downloads from npm: set TUG_BENCH_UI_COLD=1")
	}
	mods, err := FindModulesDir(".")
	if err != nil {
		b.Fatal(err)
	}
	cache := os.Getenv("TUG_BENCH_UI_CACHE")
	if cache == "" {
		cache = b.TempDir()
	}
	log := slog.New(&cpuHandler{Handler: slog.NewTextHandler(os.Stderr, nil), last: new(cpuMark)})
	bl := &Builder{ModulesDir: mods, CacheDir: filepath.Join(cache, "bin"), Log: log}
	ctx := context.Background()
	if _, err := bl.Ensure(ctx, ArgoCD); err != nil {
		b.Fatal(err)
	}
	ui, err := bl.ArgoCDUIPath()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		// Cold each time: no binary, no yarn cache.
		b.StopTimer()
		os.RemoveAll(filepath.Dir(ui))
		os.RemoveAll(filepath.Join(cache, "yarn-cache"))
		b.StartTimer()
		if _, err := bl.EnsureArgoCDUI(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuHandler adds to each record the CPU seconds (user+sys, this process
// and its waited-for children) and the wall time since the previous
// record, and the load average.
type cpuHandler struct {
	slog.Handler
	last *cpuMark
}

type cpuMark struct {
	mu   sync.Mutex
	cpu  time.Duration
	wall time.Time
}

func (h *cpuHandler) Handle(ctx context.Context, r slog.Record) error {
	cpu := cpuTime()
	h.last.mu.Lock()
	if !h.last.wall.IsZero() {
		r.AddAttrs(slog.Duration("cpu", (cpu-h.last.cpu).Round(time.Second)),
			slog.Duration("wall", time.Since(h.last.wall).Round(time.Second)))
	}
	h.last.cpu, h.last.wall = cpu, time.Now()
	h.last.mu.Unlock()
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.AddAttrs(slog.String("load", strings.Join(strings.Fields(string(data))[:3], " ")))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *cpuHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &cpuHandler{Handler: h.Handler.WithAttrs(as), last: h.last}
}

func (h *cpuHandler) WithGroup(name string) slog.Handler {
	return &cpuHandler{Handler: h.Handler.WithGroup(name), last: h.last}
}

func cpuTime() time.Duration {
	var sum time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			sum += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return sum
}
