package giteaserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/tug-gitops/tug/internal/tools"
)

// giteaBinary builds (first run, ~5 min) or finds the pinned Gitea. The test
// never skips: without Gitea it fails, so CI cannot pass by not testing.
func giteaBinary(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bin, err := tools.Ensure(ctx, tools.Gitea)
	if err != nil {
		t.Fatalf("gitea binary: %v", err)
	}
	return bin
}

func TestStartPushRestartStop(t *testing.T) {
	bin := giteaBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	state := t.TempDir()

	s, err := Start(ctx, Options{Binary: bin, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || s.Token() == "" || s.AdminUser() != DefaultAdminUser {
		t.Fatalf("url=%q admin=%q token empty=%v", s.URL(), s.AdminUser(), s.Token() == "")
	}
	st, err := os.Stat(filepath.Join(state, "admin-token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}

	// An organization repository, seeded from a directory, readable back over git.
	commit, err := s.PushDir(ctx, "testdata/seed", "tug-gitops", "tug", "main", "seed")
	if err != nil {
		t.Fatal(err)
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{s.RepoURL("tug-gitops", "tug")}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasRef(refs, "refs/heads/main", commit) {
		t.Fatalf("remote refs %v lack main at %s", refs, commit)
	}
	// Creating it again is not an error.
	if _, err := s.CreateRepo(ctx, "tug-gitops", "tug"); err != nil {
		t.Fatalf("second CreateRepo: %v", err)
	}

	firstToken, firstPid := s.Token(), s.Pid()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(firstPid, 0) == nil {
		t.Fatalf("gitea pid %d still alive after Stop", firstPid)
	}

	// Same state directory: same admin and token, data kept.
	s2, err := Start(ctx, Options{Binary: bin, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Stop(context.Background()) })
	if s2.Token() != firstToken {
		t.Fatal("restart created a new token instead of reusing the saved one")
	}
	c, err := s2.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := c.GetRepo("tug-gitops", "tug")
	if err != nil || r.DefaultBranch != "main" {
		t.Fatalf("repo after restart: %v %+v", err, r)
	}

	// A second server on the same state directory is refused, not corrupted.
	if _, err := Start(ctx, Options{Binary: bin, StateDir: state}); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Start on a live state dir: err = %v, want 'already running'", err)
	}
}

func TestStartFailureCarriesLogTail(t *testing.T) {
	bin := giteaBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A real Gitea failure: its database path is a directory.
	state := t.TempDir()
	if err := os.MkdirAll(filepath.Join(state, "data", "gitea.db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "admin-token"), []byte(strings.Repeat("0", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "admin-token.scopes"), []byte(TokenScopes+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(ctx, Options{Binary: bin, StateDir: state})
	if err == nil {
		t.Fatal("Start with an unusable database succeeded")
	}
	if !strings.Contains(err.Error(), "log tail") || !strings.Contains(err.Error(), "unable to open database file") {
		t.Fatalf("error lacks the log tail naming the cause:\n%v", err)
	}

	// A port someone else holds is refused before Gitea starts.
	s, err := Start(ctx, Options{Binary: bin, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	var port int
	if _, err := fmt.Sscanf(s.URL(), "http://127.0.0.1:%d", &port); err != nil {
		t.Fatal(err)
	}
	if _, err = Start(ctx, Options{Binary: bin, StateDir: t.TempDir(), Port: port}); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a taken port: err = %v", err)
	}
}

func TestReviewerCanApprove(t *testing.T) {
	bin := giteaBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{Binary: bin, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	if _, err := s.PushDir(ctx, "testdata/seed", s.AdminUser(), "r", "main", "seed"); err != nil {
		t.Fatal(err)
	}
	tok, err := s.CreateUser(ctx, "reviewer")
	if err != nil {
		t.Fatal(err)
	}
	if tok == "" || tok == s.Token() {
		t.Fatal("reviewer token empty or equal to the admin's")
	}
	rc, err := s.clientFor(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	me, _, err := rc.GetMyUserInfo()
	if err != nil || me.UserName != "reviewer" {
		t.Fatalf("reviewer token identifies %v (%v)", me, err)
	}
}

func hasRef(refs []*plumbing.Reference, name, hash string) bool {
	for _, r := range refs {
		if r.Name().String() == name && r.Hash().String() == hash {
			return true
		}
	}
	return false
}
