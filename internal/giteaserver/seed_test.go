package giteaserver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
)

// TestSeedThenAdopt writes a repository before Gitea starts (twice: the
// second replaces the first, which Gitea never adopted), has Gitea adopt
// it, and pushes to it over HTTP: Gitea's database learns of a new branch
// only from its hooks, so the adopted repository must have them.
func TestSeedThenAdopt(t *testing.T) {
	bin := giteaBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", src}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@tug.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@tug.invalid")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("commit", "-q", "--allow-empty", "-m", "first")
	first := git("rev-parse", "HEAD")
	git("commit", "-q", "--allow-empty", "-m", "second")
	second := git("rev-parse", "HEAD")
	git("commit", "-q", "--allow-empty", "-m", "third")
	third := git("rev-parse", "HEAD")
	gitDir := filepath.Join(src, ".git")

	state := t.TempDir()
	if err := SeedRepo(ctx, state, gitDir, first, "tug-gitops", "tug", "main"); err != nil {
		t.Fatal(err)
	}
	// A seed Gitea never adopted (a start stopped in between) is replaced.
	if HasRepo(state, "tug-gitops", "tug") {
		t.Fatal("HasRepo says Gitea has a repository it never saw")
	}
	if err := SeedRepo(ctx, state, gitDir, second, "tug-gitops", "tug", "main"); err != nil {
		t.Fatalf("seeding over an unadopted seed: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "seed-*")); len(left) > 0 {
		t.Fatalf("seeding left %v behind", left)
	}

	s, err := Start(ctx, Options{Binary: bin, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	r, err := s.AdoptRepo(ctx, "tug-gitops", "tug")
	if err != nil {
		t.Fatal(err)
	}
	if r.Private || r.Empty || r.DefaultBranch != "main" {
		t.Fatalf("adopted repository: private=%v empty=%v default branch %q; want public, not empty, main", r.Private, r.Empty, r.DefaultBranch)
	}
	// Gitea's database lists a branch once a hook has told it of the push
	// (the commits shown are read from git, whatever the hooks did).
	branches := func() map[string]string {
		t.Helper()
		c, err := s.Client(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bs, _, err := c.ListRepoBranches("tug-gitops", "tug", gitea.ListRepoBranchesOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, b := range bs {
			m[b.Name] = b.Commit.ID
		}
		return m
	}
	if got := branches(); len(got) != 1 || got["main"] != second {
		t.Fatalf("branches after adoption %v, want main at %s", got, second)
	}
	// Gitea's now: never written over.
	if !HasRepo(state, "tug-gitops", "tug") {
		t.Fatal("HasRepo says Gitea has no repository after adopting it")
	}
	if err := SeedRepo(ctx, state, gitDir, third, "tug-gitops", "tug", "main"); err == nil || !strings.Contains(err.Error(), "already has a repository") {
		t.Fatalf("seeding over an adopted repository: err = %v, want 'already has a repository'", err)
	}

	if err := s.PushCommit(ctx, gitDir, third, "tug-gitops", "tug", "feature"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for got := branches(); got["feature"] != third; got = branches() {
		if time.Now().After(deadline) {
			t.Fatalf("Gitea lists branches %v 30 s after a push of %s to feature: its hooks did not run", got, third)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
