package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/tug-gitops/tug/internal/fsutil"
)

// SettledGOGCEnv names the environment variable that arms a settling
// binary: started with it, the program lowers its garbage collector's
// target to that percentage, collects and returns the freed memory to the
// OS each time it receives SettleSignal.
//
// The lab starts its components with a high GOGC because its start is
// CPU-bound on two cores; once the lab is ready it is mostly idle, and the
// heap headroom that bought start time is only resident memory. Without
// the variable no handler is installed, and the Go runtime ignores the
// signal as it does any signal a program did not ask for.
const SettledGOGCEnv = "TUG_SETTLED_GOGC"

// SettleSignal is the signal that settles an armed binary: a real-time
// signal (SIGRTMIN+6 on Linux), because the programs give SIGUSR1 and
// SIGUSR2 meanings of their own (Gitea stops at once on SIGUSR2, the
// scheduler dumps its cache) and none of them asks for this one. Only Go
// programs may be sent it: for any other, its default action ends the
// process.
const SettleSignal = syscall.Signal(40)

// Settles reports whether t's binary carries the settle handler.
func Settles(t Tool) bool { return recipes[t].settle }

// settleFile is the file added to a settling tool's main package.
const settleFile = "zz_tug_settle.go"

// settleSource is added to the main package of every tool whose recipe
// has settle set; it imports nothing but the standard library, so it
// compiles into any main package.
const settleSource = `// Code added by tug to this program's main package at build time; see
// SettledGOGCEnv in tug's internal/tools.

package main

import (
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
)

func init() {
	percent, err := strconv.Atoi(os.Getenv("` + SettledGOGCEnv + `"))
	if err != nil || percent <= 0 {
		return
	}
	settle := make(chan os.Signal, 1)
	signal.Notify(settle, syscall.Signal(40)) // SettleSignal
	go func() {
		for range settle {
			debug.SetGCPercent(percent)
			debug.FreeOSMemory()
		}
	}()
}
`

// settleEntries writes the settle file into work and returns the `go build
// -overlay` entries that add it to r's main package, and the package to
// build. Go refuses overlays inside the module cache, so a main package
// there is rebuilt, unchanged, in a folder of the tool's module (dir) that
// exists only in the overlay, .tug-settle/TOOL: upstream's own main files
// plus the settle file. A package in a writable tree (the argo-cd copy,
// dir) gets the settle file beside its own files.
func settleEntries(ctx context.Context, t Tool, r recipe, dir string, env []string, work string) (replace map[string]string, pkg string, err error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, "", err
	}
	src := filepath.Join(work, settleFile)
	if err := fsutil.WriteFileAtomic(src, []byte(settleSource), 0o644); err != nil {
		return nil, "", err
	}
	if r.fromArgoCDSource {
		pkgDir := filepath.Join(dir, strings.TrimPrefix(r.pkg, argoCDModule))
		return map[string]string{filepath.Join(pkgDir, settleFile): src}, r.pkg, nil
	}
	upstream, files, err := mainFiles(ctx, r, dir, env)
	if err != nil {
		return nil, "", err
	}
	rel := filepath.Join(".tug-settle", string(t))
	replace = map[string]string{filepath.Join(dir, rel, settleFile): src}
	for _, f := range files {
		replace[filepath.Join(dir, rel, f)] = filepath.Join(upstream, f)
	}
	return replace, "./" + filepath.ToSlash(rel), nil
}

// writeOverlay writes a `go build -overlay` file.
func writeOverlay(file string, replace map[string]string) error {
	data, err := json.Marshal(struct{ Replace map[string]string }{replace})
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(file, data, 0o644)
}

// mainFiles lists the Go files of r's main package as `go build` would
// pick them with r's tags and environment.
func mainFiles(ctx context.Context, r recipe, dir string, env []string) (pkgDir string, files []string, err error) {
	args := []string{"list", "-f", "{{.Dir}}\n{{join .GoFiles \" \"}} {{join .CgoFiles \" \"}}\n{{len .EmbedFiles}}"}
	if r.tags != "" {
		args = append(args, "-tags", r.tags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, r.pkg)...)
	cmd.Dir, cmd.Env = dir, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", nil, fmt.Errorf("go list %s: %w\n%s", r.pkg, err, tail(stderr.Bytes(), 20))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		return "", nil, fmt.Errorf("go list %s: unexpected output %q", r.pkg, out)
	}
	if lines[2] != "0" {
		// Embedded files are found relative to the package's folder, which
		// the overlay moves.
		return "", nil, fmt.Errorf("%s embeds files: its main package cannot be rebuilt elsewhere to add the settle handler", r.pkg)
	}
	return lines[0], strings.Fields(lines[1]), nil
}
