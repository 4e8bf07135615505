package promote

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/gitops-engine/pkg/health"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/forge/connect"
)

const prodFile = "charts/backend/values-prod.yaml"

func opts(f forge.Forge, app string) Options {
	return Options{App: app, From: "dev", To: "prod", Forge: f}
}

// The main story: promote opens a PR that changes only the tag, a reviewer
// approves and merges it through the Gitea API, main then has the new tag,
// and running promote again is a no-op.
func TestPromoteOpensPRReviewerMerges(t *testing.T) {
	ctx := context.Background()
	r, dir := fixtureRepo(t, "backend")
	f := adminForge(t, r)
	orig, err := os.ReadFile(filepath.Join(dir, prodFile))
	if err != nil {
		t.Fatal(err)
	}

	res, err := Run(ctx, opts(f, "backend"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("time from promote start to PR opened: %s (PR #%d %s)", res.TimeToPR.Round(time.Millisecond), res.PR.Number, res.PR.URL)
	if !res.PRCreated || res.PR == nil || !res.PR.Open || res.OldTag != "0.1.0" || res.NewTag != "0.2.0" ||
		res.Branch != "promote/backend-prod-0.2.0" || res.ValueFile != prodFile || res.Attempts != 1 {
		t.Fatalf("result: %+v", res)
	}
	if want := "Promote backend dev → prod: 0.1.0 → 0.2.0"; res.PR.Title != want {
		t.Errorf("title %q, want %q", res.PR.Title, want)
	}
	for _, want := range []string{"`0.1.0` → `0.2.0`", prodFile, "backend-prod", "```diff",
		"-      - image: ghcr.io/tug-gitops/svc:0.1.0", "+      - image: ghcr.io/tug-gitops/svc:0.2.0"} {
		if !strings.Contains(res.PR.Body, want) {
			t.Errorf("PR body lacks %q:\n%s", want, res.PR.Body)
		}
	}
	// Byte for byte: the branch's file is the original with only the tag changed.
	onBranch := readBranch(t, f, res.Branch, prodFile)
	want := bytes.Replace(orig, []byte(`tag: "0.1.0"`), []byte(`tag: "0.2.0"`), 1)
	if !bytes.Equal(onBranch, want) {
		t.Fatalf("branch file differs beyond the tag:\n%s", onBranch)
	}

	rev := reviewerForge(t, r)
	if err := rev.Approve(ctx, res.PR.Number, "Looks right."); err != nil {
		t.Fatal(err)
	}
	merged, err := rev.MergePullRequest(ctx, res.PR.Number, "merge promotion")
	if err != nil {
		t.Fatal(err)
	}
	if !merged.Merged || merged.MergeCommit == "" {
		t.Fatalf("merge: %+v", merged)
	}
	if got := readBranch(t, f, "main", prodFile); !bytes.Equal(got, want) {
		t.Fatalf("main after merge:\n%s", got)
	}

	again, err := Run(ctx, opts(f, "backend"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.NoOp || again.PR != nil || again.OldTag != "0.2.0" {
		t.Fatalf("second run after merge should be a no-op: %+v", again)
	}
}

func TestRerunReusesOpenPR(t *testing.T) {
	ctx := context.Background()
	r, _ := fixtureRepo(t, "backend")
	f := adminForge(t, r)
	first, err := Run(ctx, opts(f, "backend"))
	if err != nil {
		t.Fatal(err)
	}
	// The second run goes the way the CLI does: target from flags and
	// tug.yaml, token from $TUG_FORGE_TOKEN.
	t.Setenv(forge.TokenEnv, srv.Token())
	f2, err := connect.Open(ctx, t.TempDir(), connect.Target{Kind: forge.KindGitea, URL: srv.URL(), Owner: r.Owner, Name: r.Name})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Run(ctx, opts(f2, "backend"))
	if err != nil {
		t.Fatal(err)
	}
	if second.PRCreated || second.PR.Number != first.PR.Number || second.Commit != first.Commit {
		t.Fatalf("re-run opened something new: first %+v / second %+v", first.PR, second.PR)
	}
}

func TestNoOpWhenAlreadyAtTag(t *testing.T) {
	ctx := context.Background()
	r, _ := fixtureRepo(t, "backend")
	f := adminForge(t, r)
	o := opts(f, "backend")
	o.Tag = "0.1.0"
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.NoOp || res.PR != nil || res.Branch != "" {
		t.Fatalf("want a no-op: %+v", res)
	}
	heads, err := remoteHeads(ctx, f.CloneURL(), f.GitAuth())
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 1 {
		t.Fatalf("no-op pushed branches: %v", heads)
	}
}

func TestDryRunTouchesNothing(t *testing.T) {
	ctx := context.Background()
	r, dir := fixtureRepo(t, "backend")
	f := adminForge(t, r)
	o := opts(f, "backend")
	o.DryRun = true
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Diff, `+  tag: "0.2.0"   # set by tug promote`) || !strings.Contains(res.ManifestDiff, "svc:0.2.0") {
		t.Fatalf("dry run diff:\n%s\n%s", res.Diff, res.ManifestDiff)
	}
	heads, err := remoteHeads(ctx, f.CloneURL(), f.GitAuth())
	if err != nil {
		t.Fatal(err)
	}
	if pr, _ := f.FindOpenPullRequest(ctx, branchName("promote", "backend", "prod", "0.2.0"), "main"); len(heads) != 1 || pr != nil {
		t.Fatalf("dry run touched the forge: heads %v, pr %v", heads, pr)
	}

	// Without a forge: reads the directory, leaves it as it was.
	before := snapshot(t, dir)
	local, err := Run(ctx, Options{App: "backend", From: "dev", To: "prod", DryRun: true, RepoDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if local.Diff != res.Diff || local.ManifestDiff != res.ManifestDiff {
		t.Fatalf("local dry run differs from the forge one:\n%s", local.Diff)
	}
	if after := snapshot(t, dir); after != before {
		t.Fatal("local dry run changed the working tree")
	}
	if _, err := Run(ctx, Options{App: "backend", From: "dev", To: "prod", RepoDir: dir}); err == nil {
		t.Fatal("a real run without a forge was accepted")
	}
}

func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		fmt.Fprintf(&b, "%s %v %s\n", p, info.ModTime(), data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A tag dev does not run is refused; --force promotes it and says so in the PR.
func TestRefusalAndForce(t *testing.T) {
	ctx := context.Background()
	r, _ := fixtureRepo(t, "backend")
	f := adminForge(t, r)
	o := opts(f, "backend")
	o.Tag = "9.9.9"
	_, err := Run(ctx, o)
	if err == nil || !strings.Contains(err.Error(), `charts/backend/values-dev.yaml:4 sets image.tag to "0.2.0", not "9.9.9"`) {
		t.Fatalf("err = %v", err)
	}
	o.Force = true
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.PR.Body, "**Warning:** promoted with --force") || !strings.Contains(res.PR.Body, "overridden with --force") {
		t.Fatalf("PR body does not record --force:\n%s", res.PR.Body)
	}
}

// Someone changes the same value file on main while the promotion is being
// prepared: the change is rebuilt on the new head, and both edits survive.
func TestMovedBaseRebuilds(t *testing.T) {
	ctx := context.Background()
	r, _ := fixtureRepo(t, "backend")
	f := adminForge(t, r)
	o := opts(f, "backend")
	var moved string
	o.beforePush = func(ctx context.Context, attempt int) error {
		if attempt > 1 {
			return nil
		}
		var err error
		moved, err = commitToMain(ctx, f, prodFile, func(b []byte) []byte {
			return bytes.Replace(b, []byte("replicaCount: 2"), []byte("replicaCount: 3"), 1)
		})
		return err
	}
	o.Merge = true
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || res.BaseCommit != moved || !res.Merged {
		t.Fatalf("want a rebuild on %s: %+v", moved, res)
	}
	main := readBranch(t, f, "main", prodFile)
	if !bytes.Contains(main, []byte("replicaCount: 3")) || !bytes.Contains(main, []byte(`tag: "0.2.0"`)) {
		t.Fatalf("main lost an update:\n%s", main)
	}
}

// Ten promotions of different apps at once: ten PRs, each changing its own
// file; merged (also at once), main has every new tag.
func TestTenConcurrentPromotions(t *testing.T) {
	ctx := context.Background()
	var apps []string
	for i := range 10 {
		apps = append(apps, fmt.Sprintf("svc%d", i))
	}
	r, _ := fixtureRepo(t, apps...)
	f := adminForge(t, r)

	results := make([]*Result, len(apps))
	errs := make([]error, len(apps))
	var wg sync.WaitGroup
	began := time.Now()
	for i, app := range apps {
		wg.Go(func() { results[i], errs[i] = Run(ctx, opts(f, app)) })
	}
	wg.Wait()
	t.Logf("ten concurrent promotions to ten open PRs: %s", time.Since(began).Round(time.Millisecond))
	seen := map[int64]bool{}
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("%s: %v", apps[i], errs[i])
		}
		if seen[res.PR.Number] || res.PR.Head != "promote/"+apps[i]+"-prod-0.2.0" {
			t.Fatalf("%s: PR %+v", apps[i], res.PR)
		}
		seen[res.PR.Number] = true
	}

	rev := reviewerForge(t, r)
	for i, res := range results {
		wg.Go(func() {
			if err := rev.Approve(ctx, res.PR.Number, "ok"); err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = rev.MergePullRequest(ctx, res.PR.Number, "merge")
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("merge %s: %v", apps[i], err)
		}
	}
	c, err := cloneBase(ctx, f.CloneURL(), f.GitAuth(), "main")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, app := range apps {
		data, err := c.fileAt(c.head, "charts/"+app+"/values-prod.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(`tag: "0.2.0"`)) {
			t.Errorf("lost update: %s prod is\n%s", app, data)
		}
	}
}

// The cluster gate's decision, against real git history: the live
// Application must be Synced+Healthy at a commit whose dev file has the tag.
func TestGateVerdict(t *testing.T) {
	ctx := context.Background()
	r, _ := fixtureRepo(t, "backend")
	f := adminForge(t, r)
	c, err := cloneBase(ctx, f.CloneURL(), f.GitAuth(), "main")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := c.head.String()
	// A later commit where dev moved on to 0.3.0.
	later, err := commitToMain(ctx, f, "charts/backend/values-dev.yaml", func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"0.2.0"`), []byte(`"0.3.0"`), 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.fetchBranch(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	from := envApp{Env: "dev", ValueFile: "charts/backend/values-dev.yaml"}
	live := func(sync v1alpha1.SyncStatusCode, hs health.HealthStatusCode, rev string) *v1alpha1.Application {
		a := &v1alpha1.Application{}
		a.Name = "backend-dev"
		a.Status.Sync.Status, a.Status.Health.Status, a.Status.Sync.Revision = sync, hs, rev
		return a
	}
	cases := []struct {
		app  *v1alpha1.Application
		tag  string
		want string // "" = allowed
	}{
		{live(v1alpha1.SyncStatusCodeSynced, health.HealthStatusHealthy, base), "0.2.0", ""},
		{live(v1alpha1.SyncStatusCodeSynced, health.HealthStatusHealthy, later), "0.3.0", ""},
		{live(v1alpha1.SyncStatusCodeSynced, health.HealthStatusHealthy, base), "0.3.0", `sets image.tag to "0.2.0", not "0.3.0"`},
		{live(v1alpha1.SyncStatusCodeSynced, health.HealthStatusDegraded, base), "0.2.0", "Synced/Degraded, not Synced/Healthy"},
		{live(v1alpha1.SyncStatusCodeOutOfSync, health.HealthStatusHealthy, base), "0.2.0", "OutOfSync/Healthy"},
		{live("", "", ""), "0.2.0", "Unknown/Unknown"},
		{live(v1alpha1.SyncStatusCodeSynced, health.HealthStatusHealthy, plumbing.ZeroHash.String()), "0.2.0", "cannot be read"},
	}
	for i, tc := range cases {
		got := gateVerdict(tc.app, from, "image.tag", tc.tag, c)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("case %d: verdict %q, want %q", i, got, tc.want)
		}
	}
}
