package promote

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tug-gitops/tug/internal/forge"
	giteaforge "github.com/tug-gitops/tug/internal/forge/gitea"
	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/giteaserver/giteatest"
)

// One real Gitea per test binary; each test works in its own repository.
var (
	srv           *giteaserver.Server
	reviewerToken string
	repoCounter   atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	var stop func()
	var err error
	if srv, reviewerToken, stop, err = giteatest.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "promote tests:", err)
		return 1
	}
	defer stop()
	return m.Run()
}

// fixtureRepo builds a GitOps repository with one chart and a dev/prod
// Application pair per app (dev runs 0.2.0, prod 0.1.0), pushes it to a
// fresh Gitea repository with the reviewer as collaborator, and returns the
// repository and the local directory it was made from.
func fixtureRepo(t testing.TB, apps ...string) (forge.Repo, string) {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, "testdata/tug.yaml", filepath.Join(dir, "tug.yaml"))
	for _, app := range apps {
		chart := filepath.Join(dir, "charts", app)
		for _, f := range []string{"Chart.yaml", "values.yaml", "templates/deployment.yaml"} {
			copyFile(t, filepath.Join("testdata/chart", f), filepath.Join(chart, f))
		}
		writeTemplate(t, "testdata/values-dev.yaml.tmpl", filepath.Join(chart, "values-dev.yaml"), app)
		writeTemplate(t, "testdata/values-prod.yaml.tmpl", filepath.Join(chart, "values-prod.yaml"), app)
		writeTemplate(t, "testdata/app.yaml.tmpl", filepath.Join(dir, "infra", "apps", app+".yaml"), app)
	}
	ctx := context.Background()
	r := forge.Repo{Owner: "tug-gitops", Name: fmt.Sprintf("%s-%d", strings.ToLower(t.Name()), repoCounter.Add(1))}
	r.Name = strings.NewReplacer("/", "-", "_", "-").Replace(r.Name)
	if _, err := srv.PushDir(ctx, dir, r.Owner, r.Name, "main", "initial"); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	write := sdk.AccessModeWrite
	if _, err := c.AddCollaborator(r.Owner, r.Name, "reviewer", sdk.AddCollaboratorOption{Permission: &write}); err != nil {
		t.Fatal(err)
	}
	return r, dir
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, data)
}

func writeTemplate(t testing.TB, src, dst, app string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, []byte(strings.ReplaceAll(string(data), "APP", app)))
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// adminForge is the promoter's view (the admin's token); reviewerForge a
// second person's, who may approve.
func adminForge(t testing.TB, r forge.Repo) forge.Forge {
	t.Helper()
	f, err := giteaforge.New(context.Background(), srv.URL(), srv.Token(), r)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func reviewerForge(t testing.TB, r forge.Repo) forge.Forge {
	t.Helper()
	f, err := giteaforge.New(context.Background(), srv.URL(), reviewerToken, r)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// readMain reads a file on the forge's main branch through a fresh clone.
func readBranch(t testing.TB, f forge.Forge, branch, rel string) []byte {
	t.Helper()
	c, err := cloneBase(context.Background(), f.CloneURL(), f.GitAuth(), branch)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data, err := c.fileAt(c.head, rel)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// commitToMain pushes a commit changing rel on main, as another person
// would, and returns its hash.
func commitToMain(ctx context.Context, f forge.Forge, rel string, change func([]byte) []byte) (string, error) {
	c, err := cloneBase(ctx, f.CloneURL(), f.GitAuth(), "main")
	if err != nil {
		return "", err
	}
	defer c.Close()
	path := filepath.Join(c.dir, filepath.FromSlash(rel))
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, change(data), 0o644); err != nil {
		return "", err
	}
	wt, err := c.repo.Worktree()
	if err != nil {
		return "", err
	}
	if _, err := wt.Add(rel); err != nil {
		return "", err
	}
	sig := &object.Signature{Name: "someone", Email: "someone@noreply.localhost", When: time.Now()}
	h, err := wt.Commit("someone else's change", &git.CommitOptions{Author: sig})
	if err != nil {
		return "", err
	}
	ref := plumbing.NewBranchReferenceName("main").String()
	if err := c.repo.PushContext(ctx, &git.PushOptions{RefSpecs: []config.RefSpec{config.RefSpec(ref + ":" + ref)}, Auth: c.auth}); err != nil {
		return "", err
	}
	return h.String(), nil
}
