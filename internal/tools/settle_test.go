package tools

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/testrepo"
)

// A settling tool is built from its upstream main package, unchanged, plus
// the settle file, in a folder that exists only in the overlay. Started
// with SettledGOGCEnv, it keeps its start GOGC until SettleSignal and then runs
// with the settled one; started without it, it ignores SettleSignal as any Go
// program that did not ask for the signal does. The builder's folders may
// be relative.
func TestSettlingToolLowersItsGOGCOnItsSignal(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := t.TempDir()
	files := map[string]string{
		"tool/go.mod": "module example.com/tool\n\ngo 1.22\n",
		// Each line on stdin is answered with the collector's target now.
		"tool/upstream/main.go": "package main\n\nimport (\n\t\"bufio\"\n\t\"fmt\"\n\t\"os\"\n\t\"runtime/metrics\"\n)\n\n" +
			"func main() {\n\ts := []metrics.Sample{{Name: \"/gc/gogc:percent\"}}\n\tin := bufio.NewScanner(os.Stdin)\n\tfor in.Scan() {\n\t\tmetrics.Read(s)\n\t\tfmt.Println(s[0].Value.Uint64())\n\t}\n}\n",
		"tool/upstream/main_test.go": "package main\n\nimport \"testing\"\n\nfunc TestNothing(t *testing.T) {}\n",
	}
	writeTree(t, root, files)
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOWORK", "off")
	// Folders given relative to the caller's working directory, as a test
	// beside the code gives them: the go command runs elsewhere, in the
	// tool's module.
	t.Chdir(root)
	b := &Builder{ModulesDir: ".", CacheDir: "cache"}
	r := recipe{module: "tool", pkg: "example.com/tool/upstream", settle: true}
	if err := b.buildRecipe(ctx, "prog", r, filepath.Join("cache", "prog")); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "cache", "prog")
	if _, err := os.Stat(filepath.Join(root, "tool", ".tug-settle")); !os.IsNotExist(err) {
		t.Errorf("the build wrote into the tool's module: %v", err)
	}
	if _, err := os.Stat(bin + ".settle"); !os.IsNotExist(err) {
		t.Errorf("the build left its overlay behind: %v", err)
	}

	armed := startProg(t, bin, "GOGC=200", SettledGOGCEnv+"=37")
	if got := armed.gogc(t); got != "200" {
		t.Fatalf("before SettleSignal: GOGC %s, want the start's 200", got)
	}
	armed.cmd.Process.Signal(SettleSignal)
	deadline := time.Now().Add(10 * time.Second)
	got := armed.gogc(t)
	for got != "37" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got = armed.gogc(t)
	}
	if got != "37" {
		t.Fatalf("after SettleSignal: GOGC %s, want the settled 37", got)
	}

	// A Go program ignores SettleSignal unless it asked for it: one started
	// without the variable goes on at its start GOGC.
	unarmed := startProg(t, bin, "GOGC=200")
	unarmed.gogc(t)
	unarmed.cmd.Process.Signal(SettleSignal)
	if got := unarmed.gogc(t); got != "200" {
		t.Errorf("unarmed, after SettleSignal: GOGC %s, want 200 (no handler installed)", got)
	}
}

type prog struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startProg(t *testing.T, bin string, env ...string) *prog {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	return &prog{cmd: cmd, in: in, out: bufio.NewScanner(out)}
}

// gogc asks the program for its GC target.
func (p *prog) gogc(t *testing.T) string {
	t.Helper()
	fmt.Fprintln(p.in)
	if !p.out.Scan() {
		t.Fatalf("the program answered nothing: %v", p.out.Err())
	}
	return strings.TrimSpace(p.out.Text())
}

// writeTree writes files (path relative to root → content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	if err := testrepo.WriteFiles(root, files); err != nil {
		t.Fatal(err)
	}
}
