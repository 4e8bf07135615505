// Package prcheck proves the workflows in .github/workflows (the pull-request
// check in detail; every workflow's lint and permissions):
// it lints every workflow file with actionlint (as a Go library), and runs
// the workflow's own "tug validate" and "tug diff" step scripts, verbatim,
// against a real Gitea (the one the lab runs, started by giteatest) with a
// real pull request — twice, to show the diff comment stays one comment;
// and the release workflow's "tug release" step against Gitea and an
// in-process registry (release_test.go).
// `go test -short` runs only the lint.
package prcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"

	"github.com/tug-gitops/tug/internal/diff"
	"github.com/tug-gitops/tug/internal/forge"
	giteaforge "github.com/tug-gitops/tug/internal/forge/gitea"
	"github.com/tug-gitops/tug/internal/fsutil"
	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/giteaserver/giteatest"
)

const workflows = "../../.github/workflows"

// Gitea starts on first use, so the lint alone needs none.
var (
	giteaOnce sync.Once
	srv       *giteaserver.Server
	giteaErr  error
	stopGitea = func() {}
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	stopGitea()
	os.Exit(code)
}

func gitea(t *testing.T) *giteaserver.Server {
	t.Helper()
	giteaOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
		defer cancel()
		var stop func()
		if srv, _, stop, giteaErr = giteatest.Start(ctx); giteaErr == nil {
			stopGitea = stop
		}
	})
	if giteaErr != nil {
		t.Fatal(giteaErr)
	}
	return srv
}

func TestWorkflowsPassActionlint(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(workflows, "*.y*ml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflow files in %s (%v)", workflows, err)
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintFiles(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind)
	}
}

// The lint is live: a workflow with a typo in an expression fails it.
func TestActionlintCatchesABrokenWorkflow(t *testing.T) {
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte("on: pull_request\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event.pull_request.numbr }} ${{ steps.nope.outputs.x }}\n")
	errs, err := l.Lint("bad.yaml", bad, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) == 0 {
		t.Fatal("actionlint accepted a workflow reading an undefined step's output")
	}
}

// workflow is the part of a workflow file the test runs.
type workflow struct {
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		Permissions map[string]string `yaml:"permissions"`
		Steps       []struct {
			Name string            `yaml:"name"`
			Run  string            `yaml:"run"`
			Env  map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func loadWorkflow(t *testing.T) workflow {
	t.Helper()
	return loadWorkflowFile(t, "pr.yaml")
}

func loadWorkflowFile(t *testing.T, name string) workflow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(workflows, name))
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// step returns the run script and env of the step named name in job.
func (w workflow) step(t *testing.T, job, name string) (string, map[string]string) {
	t.Helper()
	for _, s := range w.Jobs[job].Steps {
		if s.Name == name {
			return s.Run, s.Env
		}
	}
	t.Fatalf("pr.yaml: job %q has no step %q", job, name)
	return "", nil
}

// Least privilege: nothing at the top, and each job only what it uses.
func TestWorkflowPermissionsAreLeast(t *testing.T) {
	want := map[string]map[string]map[string]string{
		"pr.yaml": {
			"test":     {"contents": "read"},
			"validate": {"contents": "read", "security-events": "write"},
			"diff":     {"contents": "read", "pull-requests": "write"},
		},
		// The release branch push needs contents: write; ghcr.io needs
		// packages: write; the dev pull request pull-requests: write.
		"release.yaml": {
			"release": {"contents": "write", "packages": "write", "pull-requests": "write"},
		},
	}
	files, _ := filepath.Glob(filepath.Join(workflows, "*.y*ml"))
	if len(files) != len(want) {
		t.Errorf("workflows %v; every workflow needs its expected permissions listed here", files)
	}
	for file, jobs := range want {
		w := loadWorkflowFile(t, file)
		if len(w.Permissions) != 0 {
			t.Errorf("%s: top-level permissions %v, want {}", file, w.Permissions)
		}
		if len(w.Jobs) != len(jobs) {
			t.Errorf("%s: jobs %d, want %d", file, len(w.Jobs), len(jobs))
		}
		for job, perms := range jobs {
			if got := w.Jobs[job].Permissions; !maps.Equal(got, perms) {
				t.Errorf("%s: job %s permissions %v, want %v", file, job, got, perms)
			}
		}
	}
}

// The workflow's validate and diff steps, run as the workflow runs them,
// on a checkout of a pull request opened on a real Gitea.
func TestWorkflowStepsOnGiteaPullRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Gitea")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s := gitea(t)
	w := loadWorkflow(t)
	validateRun, _ := w.step(t, "validate", "tug validate")
	diffRun, diffEnv := w.step(t, "diff", "tug diff")

	checkout := seedRepo(t)
	tug := buildTug(t)
	if err := os.MkdirAll(filepath.Join(checkout, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tug, filepath.Join(checkout, "bin", "tug")); err != nil {
		t.Fatal(err)
	}
	const owner, name = "tug-gitops", "prcheck"
	if _, err := s.CreateRepo(ctx, owner, name); err != nil {
		t.Fatal(err)
	}
	gitDir := filepath.Join(checkout, ".git")
	if err := s.PushCommit(ctx, gitDir, git(t, checkout, "rev-parse", "main"), owner, name, "main"); err != nil {
		t.Fatal(err)
	}
	// The pull request: a promotion-like tag bump in prod.
	git(t, checkout, "checkout", "-q", "-b", "bump")
	replaceIn(t, checkout, "charts/backend/values-prod.yaml", `tag: "0.1.0"`, `tag: "0.2.0"`)
	head := commitAll(t, checkout, "bump backend-prod to 0.2.0")
	if err := s.PushCommit(ctx, gitDir, head, owner, name, "bump"); err != nil {
		t.Fatal(err)
	}
	f, err := giteaforge.New(ctx, s.URL(), s.Token(), forge.Repo{Owner: owner, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	pr, _, err := f.OpenPullRequest(ctx, forge.NewPullRequest{Head: "bump", Base: "main", Title: "bump backend-prod"})
	if err != nil {
		t.Fatal(err)
	}
	// actions/checkout with fetch-depth 0: the base as origin/<base>.
	git(t, checkout, "update-ref", "refs/remotes/origin/main", git(t, checkout, "rev-parse", "main"))

	// The step's env, with the forge the lab runs instead of GitHub. Every
	// variable the workflow sets must be given here, or the test would run
	// something else than the workflow.
	env := map[string]string{
		"TUG_FORGE": "gitea", "TUG_FORGE_URL": s.URL(), "TUG_FORGE_TOKEN": s.Token(),
		"BASE_REF": "main", "PR": fmt.Sprint(pr.Number), "REPO": owner + "/" + name,
	}
	if got, want := slices.Sorted(maps.Keys(diffEnv)), slices.Sorted(maps.Keys(env)); !slices.Equal(got, want) {
		t.Fatalf("the diff step's env is %v; this test gives %v: update both together", got, want)
	}

	out := runStep(t, checkout, validateRun, nil)
	var sarif struct {
		Runs []struct {
			Results []any `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(checkout, "tug.sarif")), &sarif); err != nil || len(sarif.Runs) != 1 {
		t.Fatalf("tug.sarif: %v (%d runs)\nstep output:\n%s", err, len(sarif.Runs), out)
	}
	if len(sarif.Runs[0].Results) != 0 || !strings.Contains(out, "status=0") {
		t.Errorf("validate found %d problems in a clean repository:\n%s", len(sarif.Runs[0].Results), out)
	}

	for run := 1; run <= 2; run++ {
		out := runStep(t, checkout, diffRun, env)
		md := string(readFile(t, filepath.Join(checkout, "diff.md")))
		if !strings.Contains(md, "backend-prod") || !strings.Contains(md, "+        image: ghcr.io/tug-gitops/backend:0.2.0") {
			t.Fatalf("run %d: diff.md lacks the rendered change:\n%s\nstep output:\n%s", run, md, out)
		}
		if summary := string(readFile(t, filepath.Join(checkout, "summary.md"))); !strings.Contains(summary, md) {
			t.Errorf("run %d: the step summary does not hold diff.md", run)
		}
	}
	// A new push to the pull request: the same comment shows it.
	replaceIn(t, checkout, "charts/backend/values-prod.yaml", `tag: "0.2.0"`, `tag: "0.3.0"`)
	head = commitAll(t, checkout, "bump backend-prod to 0.3.0")
	if err := s.PushCommit(ctx, gitDir, head, owner, name, "bump"); err != nil {
		t.Fatal(err)
	}
	runStep(t, checkout, diffRun, env)

	comments, err := f.ListComments(ctx, pr.Number)
	if err != nil {
		t.Fatal(err)
	}
	var sticky []forge.Comment
	for _, c := range comments {
		if strings.Contains(c.Body, diff.Marker) {
			sticky = append(sticky, c)
		}
	}
	if len(sticky) != 1 {
		t.Fatalf("%d diff comments on pull request #%d after three runs, want exactly 1", len(sticky), pr.Number)
	}
	for _, want := range []string{"backend-prod", "-        image: ghcr.io/tug-gitops/backend:0.1.0", "+        image: ghcr.io/tug-gitops/backend:0.3.0", "<details>"} {
		if !strings.Contains(sticky[0].Body, want) {
			t.Errorf("the sticky comment lacks %q:\n%s", want, sticky[0].Body)
		}
	}
}

// runStep runs a workflow step's script with bash as GitHub does (-e, and
// the step env on top of ours), in dir.
func runStep(t *testing.T, dir, script string, env map[string]string) string {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GITHUB_OUTPUT="+filepath.Join(dir, "output.txt"), "GITHUB_STEP_SUMMARY="+filepath.Join(dir, "summary.md"))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("step script failed: %v\n--- script\n%s\n--- output\n%s", err, script, out.String())
	}
	if data, err := os.ReadFile(filepath.Join(dir, "output.txt")); err == nil {
		out.Write(data)
	}
	return out.String()
}

// seedRepo is a git work tree on main holding this repository's GitOps
// parts, committed.
func seedRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"charts/backend", "charts/frontend", "infra/gitops"} {
		if err := fsutil.CopyTree(filepath.Join("..", "..", p), filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tug.yaml"), readFile(t, "../../tug.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("/bin/\n/tug.sarif\n/diff.md\n/summary.md\n/output.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "init", "-q", "-b", "main")
	commitAll(t, dir, "seed")
	return dir
}

func buildTug(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tug")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/tug")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build tug: %v\n%s", err, out)
	}
	return bin
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func commitAll(t *testing.T, dir, msg string) string {
	t.Helper()
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", msg)
	return git(t, dir, "rev-parse", "HEAD")
}

func replaceIn(t *testing.T, dir, file, old, new string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(file))
	data := readFile(t, p)
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(p, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
