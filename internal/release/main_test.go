package release

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"io"
	"log"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/tug-gitops/tug/internal/forge"
	giteaforge "github.com/tug-gitops/tug/internal/forge/gitea"
	"github.com/tug-gitops/tug/internal/fsutil"
	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/giteaserver/giteatest"
)

// One real Gitea per test binary; each test has its own repository on it,
// and its own in-process registry.
var (
	srv         *giteaserver.Server
	repoCounter atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var stop func()
	var err error
	if srv, _, stop, err = giteatest.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "release tests:", err)
		return 1
	}
	defer stop()
	return m.Run()
}

// sourceRepo copies this repository's module files, services, charts and
// GitOps tree into a fresh git repository with one commit, and returns
// its folder.
func sourceRepo(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"go.mod", "go.sum", "tug.yaml", "apps", "charts", "infra/gitops"} {
		src, dst := filepath.Join("..", "..", p), filepath.Join(dir, p)
		st, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		if st.IsDir() {
			err = fsutil.CopyTree(src, dst)
		} else {
			var data []byte
			if data, err = os.ReadFile(src); err == nil {
				err = os.WriteFile(dst, data, 0o644)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	runGit(t, dir, "init", "-q", "-b", "main")
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-q", "-m", "seed")
	return dir
}

func runGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// gitopsRepo pushes dir's files (.git aside) to a fresh Gitea
// repository and returns the admin's forge for it.
func gitopsRepo(t testing.TB, dir string) forge.Forge {
	t.Helper()
	ctx := context.Background()
	r := forge.Repo{Owner: "tug-gitops", Name: fmt.Sprintf("release-%d", repoCounter.Add(1))}
	if _, err := srv.PushDir(ctx, dir, r.Owner, r.Name, "main", "initial"); err != nil {
		t.Fatal(err)
	}
	f, err := giteaforge.New(ctx, srv.URL(), srv.Token(), r)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newRegistry is go-containerregistry's in-process registry on loopback.
func newRegistry(t testing.TB) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func writeAppend(t testing.TB, path, text string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// fileOnBranch reads a file of a branch on the forge through a clone.
func fileOnBranch(t testing.TB, f forge.Forge, branch, rel string) []byte {
	t.Helper()
	dir := t.TempDir()
	_, err := gogit.PlainCloneContext(context.Background(), dir, false, &gogit.CloneOptions{URL: f.CloneURL(), Auth: f.GitAuth(),
		ReferenceName: plumbing.NewBranchReferenceName(branch), SingleBranch: true})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
