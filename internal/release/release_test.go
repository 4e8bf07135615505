package release

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tug-gitops/tug/internal/yamledit"
)

const devValues = "charts/backend/values-dev.yaml"

// The whole release: build from the commit, push, open the PR pinning the
// pushed digest; a re-run builds the same digest, finds it in the
// registry and reuses the PR.
func TestReleasePushesAndOpensPinnedPR(t *testing.T) {
	ctx := context.Background()
	dir := sourceRepo(t)
	f := gitopsRepo(t, dir)
	reg := newRegistry(t)
	o := Options{App: "backend", RepoDir: dir, Registry: reg, Forge: f}

	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build %.2fs, push %.2fs, PR #%d", res.BuildSeconds, res.PushSeconds, res.Change.PR.Number)
	head := runGit(t, dir, "rev-parse", "HEAD")
	if want := "0.0.0-" + head[:12]; res.Tag != want || res.Commit != head {
		t.Fatalf("tag %q from commit %s, want %q from %s", res.Tag, res.Commit, want, head)
	}
	if !res.Pushed || res.Image != "ghcr.io/tug-gitops/backend:"+res.Tag || res.PushedTo != reg+"/tug-gitops/backend:"+res.Tag {
		t.Fatalf("result: %+v", res)
	}
	// The registry holds the tag at the digest the PR pins.
	pushed, err := name.ParseReference(res.PushedTo)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(pushed)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != res.Digest {
		t.Fatalf("registry has %s, release reported %s", desc.Digest, res.Digest)
	}
	pr := res.Change.PR
	if !res.Change.PRCreated || pr.Head != "release/backend-dev-"+res.Tag || pr.Title != "Release backend "+res.Tag+" to dev" {
		t.Fatalf("PR: %+v", pr)
	}
	onBranch := fileOnBranch(t, f, pr.Head, devValues)
	for key, want := range map[string]string{"image.tag": res.Tag, "image.digest": res.Digest} {
		got, err := yamledit.Get(onBranch, key)
		if err != nil || got.Value != want {
			t.Errorf("%s on the PR branch: %q (%v), want %q", key, got.Value, err, want)
		}
	}
	for _, want := range []string{res.Digest, "+        image: ghcr.io/tug-gitops/backend@" + res.Digest, head} {
		if !strings.Contains(pr.Body, want) {
			t.Errorf("PR body lacks %q:\n%s", want, pr.Body)
		}
	}

	again, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != res.Digest {
		t.Fatalf("the same commit built %s, then %s", res.Digest, again.Digest)
	}
	if again.Pushed || !again.AlreadyThere || again.Change.PRCreated || again.Change.PR.Number != pr.Number {
		t.Fatalf("re-run pushed or opened something: %+v / PR %+v", again, again.Change.PR)
	}
}

// A tag the registry holds at another digest is refused before anything
// is pushed or opened.
func TestTakenTagIsRefused(t *testing.T) {
	ctx := context.Background()
	dir := sourceRepo(t)
	runGit(t, dir, "tag", "v1.4.0")
	f := gitopsRepo(t, dir)
	reg := newRegistry(t)
	other, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	taken, err := name.ParseReference(reg + "/tug-gitops/backend:1.4.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(taken, other); err != nil {
		t.Fatal(err)
	}
	otherDigest, _ := other.Digest()

	res, err := Run(ctx, Options{App: "backend", RepoDir: dir, Registry: reg, Forge: f})
	if !errors.Is(err, ErrTagTaken) || !strings.Contains(err.Error(), reg+"/tug-gitops/backend:1.4.0 is already "+otherDigest.String()) {
		t.Fatalf("err = %v, result %+v", err, res)
	}
	desc, err := remote.Head(taken)
	if err != nil || desc.Digest != otherDigest {
		t.Fatalf("the taken tag moved: %v %v", desc, err)
	}
	if pr, err := f.FindOpenPullRequest(ctx, "release/backend-dev-1.4.0", "main"); err != nil || pr != nil {
		t.Fatalf("a pull request was opened: %+v %v", pr, err)
	}
}

// A dry run builds and shows the change; it needs no forge and touches
// no registry. Two dry runs of one commit give one digest; the version
// tag on the commit is the default tag.
func TestDryRunSameCommitSameDigest(t *testing.T) {
	ctx := context.Background()
	dir := sourceRepo(t)
	runGit(t, dir, "tag", "-a", "v2.0.1", "-m", "release 2.0.1")
	var requests int
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		requests++
		return nil, errors.New("no registry in a dry run")
	})
	o := Options{App: "backend", RepoDir: dir, Registry: "127.0.0.1:1", DryRun: true, Transport: rt}
	a, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if a.Tag != "2.0.1" || a.TagSource != "git tag v2.0.1" || a.Digest != b.Digest || !strings.HasPrefix(a.Digest, "sha256:") || a.Pushed || requests != 0 {
		t.Fatalf("dry runs: %+v / %+v, %d registry requests", a, b, requests)
	}
	if !strings.Contains(a.Change.Diff, `+  tag: "2.0.1"`) || !strings.Contains(a.Change.Diff, `+  digest: "`+a.Digest+`"`) {
		t.Fatalf("dry-run diff:\n%s", a.Change.Diff)
	}
	if out, _ := json.Marshal(a); !strings.Contains(string(out), `"digest":"`+a.Digest+`"`) {
		t.Fatalf("json: %s", out)
	}
}

// Uncommitted edits never reach the image: it is built from the commit.
func TestBuildsTheCommitNotTheWorkTree(t *testing.T) {
	ctx := context.Background()
	dir := sourceRepo(t)
	o := Options{App: "backend", RepoDir: dir, Tag: "1.0.0", DryRun: true}
	clean, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	writeAppend(t, dir+"/apps/backend/main.go", "\nvar _ = \"uncommitted\"\n")
	dirty, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if dirty.Digest != clean.Digest {
		t.Fatalf("an uncommitted edit changed the image: %s → %s", clean.Digest, dirty.Digest)
	}
}

func TestReferences(t *testing.T) {
	ref, push, err := References("ghcr.io/tug-gitops/backend", "1.2.3", "127.0.0.1:3000")
	if err != nil || ref.Name() != "ghcr.io/tug-gitops/backend:1.2.3" || push.Name() != "127.0.0.1:3000/tug-gitops/backend:1.2.3" {
		t.Fatalf("%v %v %v", ref, push, err)
	}
	if _, _, err := References("ghcr.io/tug-gitops/backend", "1.2.3", "127.0.0.1:3000/x"); err == nil || !strings.Contains(err.Error(), "HOST[:PORT] only") {
		t.Fatalf("a registry with a path: %v", err)
	}
	if err := CheckTag("-bad"); err == nil {
		t.Fatal("tag -bad accepted")
	}
}

// Plain http goes to loopback only; anything else needs TLS.
func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	ok := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})
	rt := loopbackOnlyHTTP{ok}
	for raw, allowed := range map[string]bool{
		"http://127.0.0.1:5000/v2/": true, "http://localhost:5000/v2/": true, "http://[::1]:5000/v2/": true,
		"https://10.1.2.3/v2/": true, "http://10.1.2.3:5000/v2/": false, "http://registry.local/v2/": false,
	} {
		u, _ := url.Parse(raw)
		_, err := rt.RoundTrip(&http.Request{URL: u})
		if (err == nil) != allowed {
			t.Errorf("%s: err %v, allowed %v", raw, err, allowed)
		}
	}
}

// $TUG_REGISTRY_USER/$TUG_REGISTRY_TOKEN answer for the push registry only.
func TestEnvCredentials(t *testing.T) {
	t.Setenv(UserEnv, "ci")
	t.Setenv(TokenEnv, "s3cret")
	kc := envKeychain{host: "ghcr.io"}
	auth, err := kc.Resolve(name.MustParseReference("ghcr.io/x/y:1").Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := auth.Authorization()
	if err != nil || cfg.Username != "ci" || cfg.Password != "s3cret" {
		t.Fatalf("auth %+v %v", cfg, err)
	}
	if auth, _ := kc.Resolve(name.MustParseReference("docker.io/x/y:1").Context()); auth != authn.Anonymous {
		t.Fatal("the token was offered to another registry")
	}
	t.Setenv(UserEnv, "")
	if _, err := kc.Resolve(name.MustParseReference("ghcr.io/x/y:1").Context()); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("token without user: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
