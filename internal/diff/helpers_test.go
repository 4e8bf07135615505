package diff

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/fsutil"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*")

// newRepo makes a git repository holding a copy of this repository's
// GitOps parts (tug.yaml, charts/backend, charts/frontend, infra/gitops)
// with one commit, and returns its directory.
func newRepo(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"tug.yaml", "charts/backend", "charts/frontend", "infra/gitops"} {
		src := filepath.Join("..", "..", p)
		dst := filepath.Join(dir, p)
		st, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		if st.IsDir() {
			if err := fsutil.CopyTree(src, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "init", "-q", "-b", "main")
	commitAll(t, dir, "seed")
	return dir
}

func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// commitAll commits everything and returns the commit id.
func commitAll(t testing.TB, dir, msg string) string {
	t.Helper()
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "--allow-empty", "-m", msg)
	return git(t, dir, "rev-parse", "HEAD")
}

// edit replaces old by new in a file of the repository (old must occur).
func edit(t testing.TB, dir, file, old, new string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(file))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(p, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, dir, file, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runDiff(t testing.TB, dir, base, head string) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{Dir: dir, Base: base, Head: head})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// golden compares got with testdata/golden/name (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", name, Unified(string(want), got, "want", "got"))
	}
}

// stable blanks the commit ids, which differ on every run.
func stable(res *Result) *Result {
	c := *res
	c.Base = Revision{Ref: "base"}
	c.Head = Revision{Ref: "head"}
	return &c
}

func appNamed(res *Result, name string) *AppDiff {
	for _, a := range res.Apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}

func appNames(res *Result) []string {
	var out []string
	for _, a := range res.Apps {
		out = append(out, a.Name+":"+string(a.Change))
	}
	return out
}
