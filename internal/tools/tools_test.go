package tools

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/fsutil"
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

// CoreDNS's main package is the tool module's own: editing it (a plugin
// added for a new Corefile line) must rebuild the binary, as a new pin does.
func TestPathChangesWithTheToolModulesOwnSource(t *testing.T) {
	mods := t.TempDir()
	dir := filepath.Join(mods, "coredns")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/coredns\n"), 0o644)
	main := filepath.Join(dir, "main.go")
	os.WriteFile(main, []byte("package main\n"), 0o644)
	b := &Builder{ModulesDir: mods, CacheDir: t.TempDir()}
	before, err := b.Path(CoreDNS)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(main, []byte("package main\n\nimport _ \"example.com/plugin\"\n"), 0o644)
	after, err := b.Path(CoreDNS)
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Fatal("a changed main.go must give a new cache key, so the binary is rebuilt")
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not Go"), 0o644)
	if same, _ := b.Path(CoreDNS); same != after {
		t.Fatal("a file that is not Go source changed the cache key")
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

// stallingBuild makes every compile and link of a go build stall in a
// child process (through -toolexec) that records its pid in pidFile, so a
// test can cancel a build that is surely running.
func stallingBuild(t *testing.T, pidFile string) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "stall.sh")
	// The go command asks each tool for its version first: let that through.
	body := "#!/bin/sh\nif [ \"$2\" = \"-V=full\" ]; then exec \"$@\"; fi\necho $$ >> " + pidFile + "\nexec sleep 300\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOFLAGS", "-toolexec="+script)
}

// A build killed with tug itself (SIGKILL) leaves its temporary folder:
// the next build of the tool, which takes the same lock, removes it.
func TestBuildRemovesAKilledBuildsTemporaryFiles(t *testing.T) {
	mods := fakeModules(t)
	os.WriteFile(filepath.Join(mods, "kine", "go.mod"), []byte("module github.com/k3s-io/kine\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(mods, "kine", "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	b := &Builder{ModulesDir: mods, CacheDir: t.TempDir()}
	p, err := b.Path(Kine)
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(p+".tmpdir", "go-build123", "b001")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ensure(context.Background(), Kine); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p + ".tmpdir"); err == nil {
		t.Errorf("%s is still there after the next build", p+".tmpdir")
	}
}

func TestCancelStopsTheBuildAndItsChildren(t *testing.T) {
	mods := fakeModules(t)
	// A real, tiny main package where kine's recipe looks for it.
	os.WriteFile(filepath.Join(mods, "kine", "go.mod"), []byte("module github.com/k3s-io/kine\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(mods, "kine", "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	pidFile := filepath.Join(t.TempDir(), "pids")
	stallingBuild(t, pidFile)
	cacheDir := t.TempDir()
	// The system's temporary folder, as the build sees it: the killed go
	// command must leave no work folder there.
	sysTemp := t.TempDir()
	t.Setenv("TMPDIR", sysTemp)
	var leader atomic.Int64
	b := &Builder{ModulesDir: mods, CacheDir: cacheDir, Building: func(_ Tool, pid int) {
		if pid != 0 {
			leader.Store(int64(pid))
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := b.Ensure(ctx, Kine); done <- err }()
	var stalled []int
	deadline := time.Now().Add(2 * time.Minute)
	for len(stalled) == 0 {
		data, _ := os.ReadFile(pidFile)
		for _, f := range strings.Fields(string(data)) {
			pid, _ := strconv.Atoi(f)
			stalled = append(stalled, pid)
		}
		select {
		case err := <-done:
			t.Fatalf("build ended before it stalled: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no compile or link started within 2 minutes")
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "build kine stopped") {
			t.Fatalf("cancelled build: %v, want an error saying it was stopped", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Ensure did not return within 30 s of the cancel")
	}
	// SIGKILL is sent by the time Ensure returns, but a killed process
	// takes a moment to exit on a loaded machine: wait for that, with a deadline.
	for _, pid := range append(stalled, int(leader.Load())) {
		gone := time.Now().Add(10 * time.Second)
		for syscall.Kill(pid, 0) == nil && !zombie(pid) {
			if time.Now().After(gone) {
				t.Errorf("pid %d of the build still runs 10 s after the cancel", pid)
				break
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	}
	p, _ := b.Path(Kine)
	if _, err := os.Stat(p + ".tmp"); err == nil {
		t.Error("the cancelled build left its temporary file")
	}
	if _, err := os.Stat(p + ".tmpdir"); err == nil {
		t.Error("the cancelled build left its temporary folder")
	}
	if left, _ := os.ReadDir(sysTemp); len(left) > 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("the cancelled build left %v in the temporary folder", names)
	}
}

func zombie(pid int) bool {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestLockWaitEndsWithTheContext(t *testing.T) {
	b := &Builder{ModulesDir: fakeModules(t), CacheDir: t.TempDir()}
	p, _ := b.Path(Kine)
	unlock, err := fsutil.Lock(context.Background(), p+".lock", false)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := b.Ensure(ctx, Kine); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ensure while another process builds: %v, want it to give up with the context", err)
	}
}
