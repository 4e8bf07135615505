package prcheck

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tug-gitops/tug/internal/forge"
	giteaforge "github.com/tug-gitops/tug/internal/forge/gitea"
	"github.com/tug-gitops/tug/internal/fsutil"
)

// The release workflow's "tug release" step, run as the workflow runs it on
// a v1.4.0 tag, with a real Gitea for GitHub and go-containerregistry's
// in-process registry for ghcr.io: both images pushed, one dev pull request
// each pinning the pushed digest; run again, nothing new.
func TestReleaseWorkflowStepOnGitea(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Gitea")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s := gitea(t)
	w := loadWorkflowFile(t, "release.yaml")
	var script string
	var stepEnv map[string]string
	for _, st := range w.Jobs["release"].Steps {
		if st.Name == "tug release" {
			script, stepEnv = st.Run, st.Env
		}
	}
	if script == "" {
		t.Fatal(`release.yaml: job "release" has no step "tug release"`)
	}

	checkout := seedRepo(t)
	for _, p := range []string{"apps", "go.mod", "go.sum"} {
		src, dst := filepath.Join("..", "..", p), filepath.Join(checkout, p)
		if p == "apps" {
			if err := fsutil.CopyTree(src, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(dst, readFile(t, src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	commitAll(t, checkout, "the services")
	git(t, checkout, "tag", "v1.4.0")
	if err := os.MkdirAll(filepath.Join(checkout, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(buildTug(t), filepath.Join(checkout, "bin", "tug")); err != nil {
		t.Fatal(err)
	}
	const owner, repoName = "tug-gitops", "release-workflow"
	if _, err := s.CreateRepo(ctx, owner, repoName); err != nil {
		t.Fatal(err)
	}
	if err := s.PushCommit(ctx, filepath.Join(checkout, ".git"), git(t, checkout, "rev-parse", "main"), owner, repoName, "main"); err != nil {
		t.Fatal(err)
	}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	regHost := strings.TrimPrefix(reg.URL, "http://")

	// The step's env with the lab's stand-ins; TUG_REGISTRY is the one
	// addition (on GitHub the images go to their own registry, ghcr.io).
	env := map[string]string{
		"TUG_FORGE": "gitea", "TUG_FORGE_URL": s.URL(), "TUG_FORGE_TOKEN": s.Token(),
		"TUG_REGISTRY_USER": "ci", "TUG_REGISTRY_TOKEN": "unused-by-this-registry",
		"TAG": "v1.4.0", "REPO": owner + "/" + repoName,
	}
	if got, want := slices.Sorted(maps.Keys(stepEnv)), slices.Sorted(maps.Keys(env)); !slices.Equal(got, want) {
		t.Fatalf("the release step's env is %v; this test gives %v: update both together", got, want)
	}
	env["TUG_REGISTRY"] = regHost

	f, err := giteaforge.New(ctx, s.URL(), s.Token(), forge.Repo{Owner: owner, Name: repoName})
	if err != nil {
		t.Fatal(err)
	}
	prs := map[string]int64{}
	for run := 1; run <= 2; run++ {
		out := runStep(t, checkout, script, env)
		for _, app := range []string{"backend", "frontend"} {
			var res struct {
				Tag, Digest, PushedTo string
				Pushed                bool
				Change                struct {
					PR      *forge.PullRequest `json:"pullRequest"`
					Created bool               `json:"pullRequestCreated"`
				}
			}
			if err := json.Unmarshal(readFile(t, filepath.Join(checkout, "release-"+app+".json")), &res); err != nil || res.Change.PR == nil {
				t.Fatalf("run %d: release-%s.json: %v\n%s", run, app, err, out)
			}
			ref, err := name.ParseReference(res.PushedTo)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Head(ref)
			if err != nil || desc.Digest.String() != res.Digest || res.Tag != "1.4.0" || res.PushedTo != regHost+"/tug-gitops/"+app+":1.4.0" {
				t.Fatalf("run %d: %s: %+v; registry has %v (%v)", run, app, res, desc, err)
			}
			if res.Change.PR.Head != "release/"+app+"-dev-1.4.0" {
				t.Errorf("run %d: %s: PR %+v", run, app, res.Change.PR)
			}
			values := branchFile(t, f, res.Change.PR.Head, "charts/"+app+"/values-dev.yaml")
			if !strings.Contains(values, `tag: "1.4.0"`) || !strings.Contains(values, `digest: "`+res.Digest+`"`) {
				t.Errorf("run %d: %s: the PR's values-dev.yaml does not pin 1.4.0 at %s:\n%s", run, app, res.Digest, values)
			}
			switch run {
			case 1:
				if !res.Pushed || !res.Change.Created {
					t.Errorf("run 1: %s not pushed or no PR opened: %+v", app, res)
				}
				prs[app] = res.Change.PR.Number
			case 2:
				if res.Pushed || res.Change.Created || res.Change.PR.Number != prs[app] {
					t.Errorf("run 2: %s pushed again or opened another PR: %+v", app, res)
				}
			}
		}
		if summary := string(readFile(t, filepath.Join(checkout, "summary.md"))); !strings.Contains(summary, "### frontend 1.4.0") {
			t.Errorf("run %d: the step summary lacks the frontend section:\n%s", run, summary)
		}
	}
	if pr, err := f.FindOpenPullRequest(ctx, "release/backend-dev-1.4.0", "main"); err != nil || pr == nil || pr.Number != prs["backend"] {
		t.Fatalf("the backend release PR on the forge: %+v %v", pr, err)
	}
}

// branchFile reads a file of a branch on the forge through a fresh clone.
func branchFile(t *testing.T, f forge.Forge, branch, rel string) string {
	t.Helper()
	dir := t.TempDir()
	_, err := gogit.PlainClone(dir, false, &gogit.CloneOptions{URL: f.CloneURL(), Auth: f.GitAuth(),
		ReferenceName: plumbing.NewBranchReferenceName(branch), SingleBranch: true})
	if err != nil {
		t.Fatal(err)
	}
	return string(readFile(t, filepath.Join(dir, filepath.FromSlash(rel))))
}
