package gitea

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/giteaserver/giteatest"
)

// A real Gitea, one per test binary, started by the first test that seeds
// a repository (the tests of a hung forge need none).
var (
	srv           *giteaserver.Server
	reviewerToken string
	startOnce     sync.Once
	startErr      error
	stopGitea     = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopGitea()
	os.Exit(code)
}

func startGitea(t testing.TB) {
	t.Helper()
	startOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
		defer cancel()
		srv, reviewerToken, stopGitea, startErr = giteatest.Start(ctx)
		if startErr != nil {
			stopGitea = func() {}
		}
	})
	if startErr != nil {
		t.Fatal("start Gitea:", startErr)
	}
}

// seed makes owner/name with main and a branch "feature" one commit ahead.
func seed(t testing.TB, name string) forge.Repo {
	t.Helper()
	startGitea(t)
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PushDir(ctx, dir, "tug-gitops", name, "main", "seed"); err != nil {
		t.Fatal(err)
	}
	pushBranch(t, name, "feature", "changed\n")
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

// pushBranch pushes branch, made from main with README.md set to readme.
func pushBranch(t testing.TB, name, branch, readme string) {
	t.Helper()
	pushFile(t, name, branch, "README.md", readme)
}

// pushFile pushes branch, made from main with file set to content.
func pushFile(t testing.TB, name, branch, file, content string) {
	t.Helper()
	work := t.TempDir()
	r, err := git.PlainClone(work, false, &git.CloneOptions{URL: srv.RepoURL("tug-gitops", name), Auth: srv.GitAuth()})
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := r.Worktree()
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _ = wt.Add(file)
	sig := &object.Signature{Name: "t", Email: "t@noreply.localhost", When: time.Now()}
	if _, err := wt.Commit("change", &git.CommitOptions{Author: sig}); err != nil {
		t.Fatal(err)
	}
	spec := config.RefSpec("refs/heads/" + branch + ":refs/heads/" + branch)
	if err := r.Push(&git.PushOptions{RefSpecs: []config.RefSpec{spec}, Auth: srv.GitAuth()}); err != nil {
		t.Fatal(err)
	}
}

// A pull request that conflicts with its base stays unmergeable: Gitea
// answers 405 "try again later" as it does while checking, so the merge
// gives up once the base has stood still for mergeWait, and says why.
func TestMergeConflictGivesUp(t *testing.T) {
	ctx := context.Background()
	repo := seed(t, "conflict")
	pushBranch(t, "conflict", "rival", "rival change\n")
	author, err := New(ctx, srv.URL(), srv.Token(), repo)
	if err != nil {
		t.Fatal(err)
	}
	reviewer, err := New(ctx, srv.URL(), reviewerToken, repo)
	if err != nil {
		t.Fatal(err)
	}
	reviewer.mergeWait = 3 * time.Second
	var prs []*forge.PullRequest
	for _, head := range []string{"feature", "rival"} {
		p, _, err := author.OpenPullRequest(ctx, forge.NewPullRequest{Head: head, Base: "main", Title: head})
		if err != nil {
			t.Fatal(err)
		}
		prs = append(prs, p)
	}
	if _, err := reviewer.MergePullRequest(ctx, prs[0].Number, "first"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err = reviewer.MergePullRequest(ctx, prs[1].Number, "second")
	if err == nil {
		t.Fatal("a pull request that conflicts with main was merged")
	}
	for _, want := range []string{"still not mergeable after 3s with main unchanged", "conflicts with main", prs[1].URL} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("gave up after %s: %v", time.Since(began).Round(time.Millisecond), err)
	if p, err := reviewer.GetPullRequest(ctx, prs[1].Number); err != nil || !p.Open || p.Merged {
		t.Fatalf("the conflicting pull request after the failed merge: %+v %v", p, err)
	}
}

// Concurrent merges into one base: each round one wins and the rest are
// refused (409 out of date, then 405 while Gitea re-checks them). With the
// base moving at every round, every merge must go through, even when all of
// them take longer than mergeWait, which bounds only a base standing still.
func TestConcurrentMergesAllLand(t *testing.T) {
	ctx := context.Background()
	repo := seed(t, "concurrent")
	reviewer, err := New(ctx, srv.URL(), reviewerToken, repo)
	if err != nil {
		t.Fatal(err)
	}
	// Long enough for Gitea's one mergeability worker to re-check the six
	// or seven refused PRs after a round when other test packages load the
	// host (8 s was not: six merges gave up in one run; 15 s was not either:
	// five gave up in a CI run where the eight took 44 s). Under such load
	// the eight merges take longer than this, so a wait that bounded the
	// whole merge would fail there.
	reviewer.mergeWait = 30 * time.Second
	took, errs := mergeConcurrently(t, "concurrent", 8, reviewer)
	t.Logf("8 concurrent merges took %s (mergeWait %s)", took.Round(time.Millisecond), reviewer.mergeWait)
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// mergeConcurrently opens n pull requests on repo (seeded), each adding its
// own file, and merges them all at once as merger.
func mergeConcurrently(tb testing.TB, repo string, n int, merger *Forge) (time.Duration, []error) {
	tb.Helper()
	ctx := context.Background()
	author, err := New(ctx, srv.URL(), srv.Token(), merger.repo)
	if err != nil {
		tb.Fatal(err)
	}
	var prs []*forge.PullRequest
	for i := range n {
		branch := fmt.Sprintf("change-%d", i)
		pushFile(tb, repo, branch, branch+".txt", branch+"\n")
		p, _, err := author.OpenPullRequest(ctx, forge.NewPullRequest{Head: branch, Base: "main", Title: branch})
		if err != nil {
			tb.Fatal(err)
		}
		prs = append(prs, p)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	began := time.Now()
	for i, p := range prs {
		wg.Go(func() { _, errs[i] = merger.MergePullRequest(ctx, p.Number, p.Title) })
	}
	wg.Wait()
	return time.Since(began), errs
}

var benchRepos int

// BenchmarkConcurrentMerges measures eight merges at once into one base,
// with the retries jittered (what MergePullRequest does) against the same
// backoff without jitter, where the refused mergers come back together.
//
//	go test -run '^$' -bench ConcurrentMerges -benchtime 3x ./internal/forge/gitea
func BenchmarkConcurrentMerges(b *testing.B) {
	const n = 8
	var total [2]time.Duration
	for range b.N {
		for j, pause := range []func(time.Duration) time.Duration{jittered, func(d time.Duration) time.Duration { return d }} {
			benchRepos++ // the harness calls the benchmark more than once
			name := fmt.Sprintf("bench-%d", benchRepos)
			repo := seed(b, name)
			merger, err := New(context.Background(), srv.URL(), reviewerToken, repo)
			if err != nil {
				b.Fatal(err)
			}
			merger.pause = pause
			took, errs := mergeConcurrently(b, name, n, merger)
			if err := errors.Join(errs...); err != nil {
				b.Fatal(err)
			}
			total[j] += took
		}
	}
	b.ReportMetric(total[0].Seconds()/float64(b.N), "s-jittered/op")
	b.ReportMetric(total[1].Seconds()/float64(b.N), "s-lockstep/op")
	b.ReportMetric(float64(total[1])/float64(total[0]), "lockstep/jittered")
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

// A forge that opens the pull request but answers after the client gave
// up: the open pull request is found and returned, not reported as a
// failure that would leave it behind unreferenced.
func TestOpenPullRequestAnsweredTooLateIsFound(t *testing.T) {
	ctx := context.Background()
	repo := seed(t, fmt.Sprintf("latecreate-%d", time.Now().UnixNano()))
	target, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/pulls") {
			// Gitea does the work to the end, even after the client
			// stopped waiting (without WithoutCancel the proxy would
			// cancel Gitea's request, which may then open nothing); its
			// answer is held until the test ends.
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
			<-release
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	// Cleanups run last-in first-out: the held answer is let go before
	// Close waits for the handlers.
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })

	hc := forge.NewHTTPClient()
	hc.Transport.(*http.Transport).ResponseHeaderTimeout = 2 * time.Second
	f, err := newForge(ctx, slow.URL, srv.Token(), repo, hc)
	if err != nil {
		t.Fatal(err)
	}
	p, created, err := f.OpenPullRequest(ctx, forge.NewPullRequest{Head: "feature", Base: "main", Title: "late"})
	if err != nil {
		t.Fatalf("a pull request the forge opened but answered too late for: %v", err)
	}
	if !created || !p.Open || p.Head != "feature" {
		t.Fatalf("created=%v %+v", created, p)
	}
}
