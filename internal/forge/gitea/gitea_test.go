package gitea

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/giteaserver/giteatest"
)

// A real Gitea, one per test binary.
var (
	srv           *giteaserver.Server
	reviewerToken string
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	var stop func()
	var err error
	if srv, reviewerToken, stop, err = giteatest.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "forge/gitea tests:", err)
		return 1
	}
	defer stop()
	return m.Run()
}

// seed makes owner/name with main and a branch "feature" one commit ahead.
func seed(t *testing.T, name string) forge.Repo {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PushDir(ctx, dir, "tug-gitops", name, "main", "seed"); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	r, err := git.PlainClone(work, false, &git.CloneOptions{URL: srv.RepoURL("tug-gitops", name), Auth: srv.GitAuth()})
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := r.Worktree()
	if err := wt.Checkout(&git.CheckoutOptions{Branch: "refs/heads/feature", Create: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _ = wt.Add("README.md")
	sig := &object.Signature{Name: "t", Email: "t@noreply.localhost", When: time.Now()}
	if _, err := wt.Commit("change", &git.CommitOptions{Author: sig}); err != nil {
		t.Fatal(err)
	}
	if err := r.Push(&git.PushOptions{RefSpecs: []config.RefSpec{"refs/heads/feature:refs/heads/feature"}, Auth: srv.GitAuth()}); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	write := sdk.AccessModeWrite
	if _, err := c.AddCollaborator("tug-gitops", name, "reviewer", sdk.AddCollaboratorOption{Permission: &write}); err != nil {
		t.Fatal(err)
	}
	return forge.Repo{Owner: "tug-gitops", Name: name}
}

func TestPullRequestLifecycle(t *testing.T) {
	ctx := context.Background()
	repo := seed(t, "lifecycle")
	author, err := New(ctx, srv.URL(), srv.Token(), repo)
	if err != nil {
		t.Fatal(err)
	}
	if author.DefaultBranch() != "main" || author.CloneURL() != srv.RepoURL("tug-gitops", "lifecycle") {
		t.Fatalf("repo info: %q %q", author.DefaultBranch(), author.CloneURL())
	}
	if p, err := author.FindOpenPullRequest(ctx, "feature", "main"); err != nil || p != nil {
		t.Fatalf("before: %+v %v", p, err)
	}
	n := forge.NewPullRequest{Head: "feature", Base: "main", Title: "Change", Body: "why"}
	p, created, err := author.OpenPullRequest(ctx, n)
	if err != nil || !created || !p.Open || p.Head != "feature" || p.Base != "main" || p.HeadSHA == "" || p.URL == "" {
		t.Fatalf("open: created=%v %+v %v", created, p, err)
	}
	again, created, err := author.OpenPullRequest(ctx, n)
	if err != nil || created || again.Number != p.Number {
		t.Fatalf("second open: created=%v %+v %v", created, again, err)
	}
	// Gitea, like GitHub, does not let authors approve their own PR.
	if err := author.Approve(ctx, p.Number, "self"); err == nil {
		t.Fatal("the author could approve their own pull request")
	}
	reviewer, err := New(ctx, srv.URL(), reviewerToken, repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := reviewer.Approve(ctx, p.Number, "LGTM"); err != nil {
		t.Fatal(err)
	}
	merged, err := reviewer.MergePullRequest(ctx, p.Number, "merge it")
	if err != nil {
		t.Fatal(err)
	}
	if !merged.Merged || merged.Open || merged.MergeCommit == "" {
		t.Fatalf("merged: %+v", merged)
	}
	// Merging again returns the merged PR; no open PR remains.
	if m2, err := reviewer.MergePullRequest(ctx, p.Number, "again"); err != nil || m2.MergeCommit != merged.MergeCommit {
		t.Fatalf("merge again: %+v %v", m2, err)
	}
	if open, err := author.FindOpenPullRequest(ctx, "feature", "main"); err != nil || open != nil {
		t.Fatalf("after merge: %+v %v", open, err)
	}
}

func TestBadToken(t *testing.T) {
	seed(t, "badtoken")
	_, err := New(context.Background(), srv.URL(), "0123456789abcdef0123456789abcdef01234567", forge.Repo{Owner: "tug-gitops", Name: "badtoken"})
	if err == nil {
		t.Fatal("a wrong token was accepted")
	}
	if want := forge.TokenEnv; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not point at %s", err, want)
	}
	if strings.Contains(err.Error(), "0123456789abcdef0123456789abcdef01234567") {
		t.Fatal("token printed in the error")
	}
}
