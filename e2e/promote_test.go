package e2e

// Promotion in the lab: `tug promote` opens a pull request on the lab's
// Gitea, a second person approves and merges it through the Gitea API, and
// Argo CD rolls the new tag out to prod; reverting the PR rolls it back.
// Plus the refusal of an unhealthy dev, the idempotent re-run and ten
// concurrent promotions. Every test leaves the lab as it found it: prod back
// at its tag, promotion PRs closed, their branches deleted, root Synced and
// Healthy at the forge's head.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"code.gitea.io/sdk/gitea"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/gitops-engine/pkg/health"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/forge"
	giteaforge "github.com/tug-gitops/tug/internal/forge/gitea"
	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/promote"
	"github.com/tug-gitops/tug/internal/yamledit"
)

// The lab's forge repository: the same owner/name as tug.yaml's repoURL,
// so `tug promote` run in the repository finds it with --forge gitea and
// TUG_FORGE_URL alone, exactly as docs/promotion.md shows.
var promoteRepo = forge.Repo{Owner: "tug-gitops", Name: "tug"}

const (
	promoteReviewerUser = "release-approver"
	backendDevValues    = "charts/backend/values-dev.yaml"
	backendProdValues   = "charts/backend/values-prod.yaml"
)

// promoteValueFiles are the files promotion tests may change; each test
// puts them back.
var promoteValueFiles = []string{
	backendDevValues, backendProdValues,
	"charts/frontend/values-dev.yaml", "charts/frontend/values-prod.yaml",
}

// promoteRun is one `tug promote` process.
type promoteRun struct {
	res    promote.Result // decoded from -o json when it succeeded
	stdout string
	stderr string
	err    error
	took   time.Duration
}

// runPromote runs `tug promote ARGS -o json` the way a release manager
// does against the lab: in the repository, with the forge's URL and the
// admin's token in the environment, and the admin kubeconfig so the health
// gate reads the live Applications.
func runPromote(t testing.TB, args ...string) promoteRun {
	t.Helper()
	return runPromoteWith(promoteEnviron(t), args...)
}

// promoteEnviron is the environment of a `tug promote` process.
func promoteEnviron(t testing.TB) []string {
	t.Helper()
	return append(os.Environ(), "KUBECONFIG="+env.userKube,
		forge.TokenEnv+"="+forgeAdminToken(t), "TUG_FORGE_URL="+forgeURL(t))
}

// runPromoteWith may run in a goroutine: it never fails the test itself.
func runPromoteWith(environ []string, args ...string) promoteRun {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	full := append([]string{"promote"}, args...)
	full = append(full, "--forge", "gitea", "--kubeconfig", env.kubeconfig, "-o", "json")
	cmd := exec.CommandContext(ctx, env.tug, full...)
	cmd.Dir, cmd.Env = env.repo, environ
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	r := promoteRun{err: cmd.Run()}
	r.took, r.stdout, r.stderr = time.Since(start), out.String(), errOut.String()
	if r.err == nil {
		if err := json.Unmarshal(out.Bytes(), &r.res); err != nil {
			r.err = fmt.Errorf("decode tug promote -o json: %v\n%s", err, r.stdout)
		}
	}
	return r
}

func mustPromote(t testing.TB, args ...string) promoteRun {
	t.Helper()
	r := runPromote(t, args...)
	if r.err != nil {
		t.Fatalf("tug promote %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r
}

func forgeURL(t testing.TB) string {
	t.Helper()
	u := env.status.Endpoints["forge"]
	if u == "" {
		t.Fatalf("the lab status has no forge endpoint: %s", mustJSON(env.status.Endpoints))
	}
	return u
}

// forgeAdminToken is the token `tug lab up` stored; it goes only into
// child processes' environments and Authorization headers.
func forgeAdminToken(t testing.TB) string {
	t.Helper()
	return forgeAuth(t).Password
}

func giteaClient(t testing.TB, token string) *gitea.Client {
	t.Helper()
	c, err := gitea.NewClient(forgeURL(t), gitea.SetToken(token), gitea.SetGiteaVersion(""))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var reviewer struct {
	once  sync.Once
	token string
	err   error
}

// reviewerForge is the second person: a Gitea user with write access to
// the repository, who approves and merges (an author cannot approve their
// own pull request). Created once per lab; its password is random and
// thrown away once the token exists.
func reviewerForge(t testing.TB) forge.Forge {
	t.Helper()
	reviewer.once.Do(func() { reviewer.token, reviewer.err = createReviewer(t) })
	if reviewer.err != nil {
		t.Fatalf("create the reviewer on the forge: %v", reviewer.err)
	}
	f, err := giteaforge.New(context.Background(), forgeURL(t), reviewer.token, promoteRepo)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func createReviewer(t testing.TB) (string, error) {
	admin := giteaClient(t, forgeAdminToken(t))
	buf := make([]byte, 16)
	_, _ = rand.Read(buf)
	password := hex.EncodeToString(buf)
	no := false
	if _, _, err := admin.AdminCreateUser(gitea.CreateUserOption{
		Username: promoteReviewerUser, Email: promoteReviewerUser + "@noreply.localhost",
		Password: password, MustChangePassword: &no,
	}); err != nil {
		return "", fmt.Errorf("create user %s: %w", promoteReviewerUser, err)
	}
	uc, err := gitea.NewClient(forgeURL(t), gitea.SetBasicAuth(promoteReviewerUser, password), gitea.SetGiteaVersion(""))
	if err != nil {
		return "", err
	}
	tok, _, err := uc.CreateAccessToken(gitea.CreateAccessTokenOption{Name: "e2e-review",
		Scopes: []gitea.AccessTokenScope{"write:repository", "write:issue", "write:user"}})
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", promoteReviewerUser, err)
	}
	write := gitea.AccessModeWrite
	if _, err := admin.AddCollaborator(promoteRepo.Owner, promoteRepo.Name, promoteReviewerUser, gitea.AddCollaboratorOption{Permission: &write}); err != nil {
		return "", fmt.Errorf("add %s as collaborator: %w", promoteReviewerUser, err)
	}
	return tok.Token, nil
}

// approveAndMerge is what the reviewer does on the forge.
func approveAndMerge(t testing.TB, number int64) *forge.PullRequest {
	t.Helper()
	ctx := context.Background()
	rev := reviewerForge(t)
	if err := rev.Approve(ctx, number, "Dev is healthy with this tag; approved for prod."); err != nil {
		t.Fatal(err)
	}
	pr, err := rev.MergePullRequest(ctx, number, fmt.Sprintf("Merge pull request #%d", number))
	if err != nil {
		t.Fatal(err)
	}
	if !pr.Merged || pr.MergeCommit == "" {
		t.Fatalf("pull request #%d not merged: %+v", number, pr)
	}
	return pr
}

// pullRequestFiles lists the files a pull request changes.
func pullRequestFiles(t testing.TB, number int64) []string {
	t.Helper()
	files, _, err := giteaClient(t, forgeAdminToken(t)).ListPullRequestFiles(promoteRepo.Owner, promoteRepo.Name, number, gitea.ListPullRequestFilesOptions{})
	if err != nil {
		t.Fatalf("files of pull request #%d: %v", number, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Filename)
	}
	sort.Strings(names)
	return names
}

func getPullRequest(t testing.TB, number int64) *gitea.PullRequest {
	t.Helper()
	pr, _, err := giteaClient(t, forgeAdminToken(t)).GetPullRequest(promoteRepo.Owner, promoteRepo.Name, number)
	if err != nil {
		t.Fatalf("pull request #%d: %v", number, err)
	}
	return pr
}

// closePullRequest closes a pull request without merging and deletes its
// branch, as its author would when giving it up.
func closePullRequest(t testing.TB, number int64, branch string) {
	t.Helper()
	c := giteaClient(t, forgeAdminToken(t))
	closed := gitea.StateClosed
	if _, _, err := c.EditPullRequest(promoteRepo.Owner, promoteRepo.Name, number, gitea.EditPullRequestOption{State: &closed}); err != nil {
		t.Errorf("close pull request #%d: %v", number, err)
	}
	if branch != "" {
		if _, _, err := c.DeleteRepoBranch(promoteRepo.Owner, promoteRepo.Name, branch); err != nil {
			t.Errorf("delete branch %s: %v", branch, err)
		}
	}
}

// forgeFiles reads several files at the forge's head with one clone (nil
// for a file that does not exist).
func forgeFiles(t testing.TB, rels ...string) map[string][]byte {
	t.Helper()
	dir, _ := forgeClone(t)
	out := map[string][]byte{}
	for _, rel := range rels {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		out[rel] = data
	}
	return out
}

func tagOf(t testing.TB, rel string, data []byte) string {
	t.Helper()
	s, err := yamledit.Get(data, "image.tag")
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return s.Value
}

// restorePromotionState registers the cleanup that puts the lab back:
// every open pull request closed and every branch but main deleted, the
// value files as they were when the test began, the files it added gone,
// and root with all its children Synced and Healthy at the forge's head.
func restorePromotionState(t testing.TB, added ...string) {
	t.Helper()
	before := forgeFiles(t, promoteValueFiles...)
	t.Cleanup(func() {
		c := giteaClient(t, forgeAdminToken(t))
		prs, _, err := c.ListRepoPullRequests(promoteRepo.Owner, promoteRepo.Name, gitea.ListPullRequestsOptions{State: gitea.StateOpen, ListOptions: gitea.ListOptions{PageSize: 50}})
		if err != nil {
			t.Errorf("list open pull requests: %v", err)
		}
		for _, pr := range prs {
			closePullRequest(t, pr.Index, "")
		}
		branches, _, err := c.ListRepoBranches(promoteRepo.Owner, promoteRepo.Name, gitea.ListRepoBranchesOptions{ListOptions: gitea.ListOptions{PageSize: 50}})
		if err != nil {
			t.Errorf("list branches: %v", err)
		}
		for _, b := range branches {
			if b.Name != forgeBranch {
				if _, _, err := c.DeleteRepoBranch(promoteRepo.Owner, promoteRepo.Name, b.Name); err != nil {
					t.Errorf("delete branch %s: %v", b.Name, err)
				}
			}
		}
		now := forgeFiles(t, append(append([]string{}, promoteValueFiles...), added...)...)
		fix := map[string][]byte{}
		for rel, data := range before {
			if !bytes.Equal(now[rel], data) {
				fix[rel] = data
			}
		}
		for _, rel := range added {
			if now[rel] != nil {
				fix[rel] = nil
			}
		}
		head := forgeHead(t)
		if len(fix) > 0 {
			head = forgeWriteFiles(t, "e2e: restore what "+t.Name()+" changed", fix)
		}
		mustTugWait(t, 5*time.Minute, head, "root")
	})
}

// deploymentImage is the image of the Deployment's first container.
func deploymentImage(ctx context.Context, t *testing.T, namespace, name string) (string, error) {
	d, err := clientset(t).AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if len(d.Spec.Template.Spec.Containers) == 0 {
		return "", fmt.Errorf("deployment %s/%s has no containers", namespace, name)
	}
	return d.Spec.Template.Spec.Containers[0].Image, nil
}

// expectProd checks that APP-prod is Synced and Healthy at revision and
// its Deployment (named after the release) runs :tag.
func expectProd(t *testing.T, release, revision, tag string) {
	t.Helper()
	ctx := context.Background()
	app, err := application(ctx, t, release+"-prod")
	if err != nil || app == nil {
		t.Fatalf("Application %s-prod: %v", release, err)
	}
	if ok, why := appstatus.AtRevision(app, revision, nil); !ok {
		t.Errorf("%s-prod: %s", release, why)
	}
	if app.Status.Sync.Status != v1alpha1.SyncStatusCodeSynced || app.Status.Health.Status != health.HealthStatusHealthy {
		t.Errorf("%s-prod is %s/%s, want Synced/Healthy", release, app.Status.Sync.Status, app.Status.Health.Status)
	}
	img, err := deploymentImage(ctx, t, "shop-prod", release)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(img, ":"+tag) {
		t.Errorf("shop-prod/%s runs %s, want a tag of %s", release, img, tag)
	}
}

// revertByPullRequest is the documented rollback: `git revert -m 1 <merge>`
// on a new branch, a pull request, the reviewer's approval and merge. It
// uses the git CLI; the token reaches git through GIT_CONFIG_* environment
// variables (an Authorization header), never a URL, an argument or a file.
func revertByPullRequest(t testing.TB, mergeCommit string, number int64) *forge.PullRequest {
	t.Helper()
	dir := t.TempDir()
	basic := base64.StdEncoding.EncodeToString([]byte(giteaserver.DefaultAdminUser + ":" + forgeAdminToken(t)))
	gitEnv := append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir,
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0=Authorization: Basic "+basic,
		"GIT_AUTHOR_NAME=tug e2e", "GIT_AUTHOR_EMAIL=e2e@tug.invalid", "GIT_COMMITTER_NAME=tug e2e", "GIT_COMMITTER_EMAIL=e2e@tug.invalid")
	run := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, gitEnv
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	branch := fmt.Sprintf("revert-%d", number)
	run("clone", "--quiet", "--branch", forgeBranch, forgeRepoURL(t), ".")
	run("switch", "--quiet", "-c", branch)
	run("revert", "--no-edit", "-m", "1", mergeCommit)
	run("push", "--quiet", "origin", branch)
	pr, _, err := giteaClient(t, forgeAdminToken(t)).CreatePullRequest(promoteRepo.Owner, promoteRepo.Name, gitea.CreatePullRequestOption{
		Head: branch, Base: forgeBranch, Title: fmt.Sprintf("Revert #%d", number),
		Body: fmt.Sprintf("Reverts #%d (`git revert -m 1 %s`), as docs/promotion.md says to roll back.", number, mergeCommit[:12]),
	})
	if err != nil {
		t.Fatalf("open the revert pull request: %v", err)
	}
	return approveAndMerge(t, pr.Index)
}

// TestPromoteBackendByPullRequest is promotion end to end: dev runs A,
// prod runs B; `tug promote backend --from dev --to prod` (health gate on
// the live backend-dev) opens a PR; the reviewer approves and merges it;
// `tug wait backend-prod --revision <merge>` → prod runs :A, Synced and
// Healthy; promoting again is a no-op; reverting the PR brings prod back to B.
func TestPromoteBackendByPullRequest(t *testing.T) {
	restorePromotionState(t)
	files := forgeFiles(t, backendDevValues, backendProdValues)
	a, b := tagOf(t, backendDevValues, files[backendDevValues]), tagOf(t, backendProdValues, files[backendProdValues])
	if a == b {
		t.Fatalf("dev and prod both run %s on the forge; the test needs two different tags", a)
	}
	start := forgeHead(t)
	mustTugWait(t, 5*time.Minute, start, "backend-dev", "backend-prod")
	expectProd(t, "backend", start, b)

	run := mustPromote(t, "backend", "--from", "dev", "--to", "prod")
	res := run.res
	t.Logf("tug promote → PR #%d opened: %s wall clock (%.3fs inside promote.Run)", res.PR.Number, run.took.Round(time.Millisecond), res.TimeToPRSeconds)
	if !res.PRCreated || res.OldTag != b || res.NewTag != a || res.PR.Head != "promote/backend-prod-"+a || res.PR.Base != forgeBranch {
		t.Fatalf("unexpected result: %s", mustJSON(res))
	}
	if !strings.Contains(res.Gate, "`backend-dev` is Synced and Healthy at") {
		t.Errorf("the health gate did not check the live backend-dev: %q", res.Gate)
	}
	if got := pullRequestFiles(t, res.PR.Number); len(got) != 1 || got[0] != backendProdValues {
		t.Errorf("pull request #%d changes %v, want only %s", res.PR.Number, got, backendProdValues)
	}
	body := getPullRequest(t, res.PR.Number).Body
	for _, want := range []string{"Health gate: `backend-dev` is Synced and Healthy", "ghcr.io/tug-gitops/backend:" + b, "ghcr.io/tug-gitops/backend:" + a} {
		if !strings.Contains(body, want) {
			t.Errorf("pull request body lacks %q:\n%s", want, body)
		}
	}

	merged := approveAndMerge(t, res.PR.Number)
	mergedAt := time.Now()
	out := mustTugWait(t, 5*time.Minute, merged.MergeCommit, "backend-prod")
	t.Logf("merge %s → backend-prod Synced+Healthy at it: %s\n%s", merged.MergeCommit[:12], time.Since(mergedAt).Round(time.Millisecond), out)
	expectProd(t, "backend", merged.MergeCommit, a)

	again := mustPromote(t, "backend", "--from", "dev", "--to", "prod")
	if !again.res.NoOp {
		t.Errorf("promoting again after the merge is not a no-op: %s", mustJSON(again.res))
	}

	revert := revertByPullRequest(t, merged.MergeCommit, res.PR.Number)
	revertedAt := time.Now()
	mustTugWait(t, 5*time.Minute, revert.MergeCommit, "backend-prod")
	t.Logf("revert merged %s → backend-prod back at %s: %s", revert.MergeCommit[:12], b, time.Since(revertedAt).Round(time.Millisecond))
	expectProd(t, "backend", revert.MergeCommit, b)
	if got := tagOf(t, backendProdValues, forgeFile(t, backendProdValues)); got != b {
		t.Errorf("after the revert %s sets %s, want %s", backendProdValues, got, b)
	}
}

// unschedulableResources makes backend-dev's new pods ask for more CPU than
// the lab's node has (32): the rollout stays in progress, so Argo CD
// reports backend-dev Synced but Progressing — deterministically, since no
// pod of that ReplicaSet can ever be scheduled.
const unschedulableResources = `resources:
  requests:
    cpu: "64"
  limits:
    cpu: "64"
`

// TestPromoteRefusedWhenDevNotHealthy: the gate reads the live backend-dev
// and refuses while its rollout is stuck; --force opens the PR anyway and
// the PR body records why it should not have. Once dev is healthy again, a
// --tag dev's synced commit does not carry is refused as well.
func TestPromoteRefusedWhenDevNotHealthy(t *testing.T) {
	restorePromotionState(t)
	sha, restore := forgeReplace(t, backendDevValues, "replicaCount: 1\n", "replicaCount: 1\n"+unschedulableResources,
		"e2e: a backend-dev rollout that cannot be scheduled")
	t.Cleanup(func() { restore() })

	dyn := dynamicClient(t)
	eventually(t, 3*time.Minute, "backend-dev Synced at "+sha[:12]+" and not Healthy", func(ctx context.Context) error {
		_, _ = dyn.Resource(v1alpha1.SchemeGroupVersion.WithResource("applications")).Namespace(appstatus.DefaultNamespace).Patch(ctx,
			"backend-dev", types.MergePatchType, []byte(`{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal"}}}`), metav1.PatchOptions{})
		app, err := application(ctx, t, "backend-dev")
		if err != nil || app == nil {
			return fmt.Errorf("backend-dev: %v", err)
		}
		if app.Status.Sync.Revision != sha || app.Status.Sync.Status != v1alpha1.SyncStatusCodeSynced {
			return fmt.Errorf("backend-dev is %s at %s", app.Status.Sync.Status, app.Status.Sync.Revision)
		}
		if app.Status.Health.Status == health.HealthStatusHealthy {
			return fmt.Errorf("backend-dev is still Healthy")
		}
		return nil
	}, func() string { return appStatusTable(t) })

	refused := runPromote(t, "backend", "--from", "dev", "--to", "prod")
	var exit *exec.ExitError
	if !errors.As(refused.err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("tug promote with an unhealthy dev: %v, want exit 1\n%s%s", refused.err, refused.stdout, refused.stderr)
	}
	t.Logf("refusal:\n%s", refused.stderr)
	for _, want := range []string{"refusing to promote backend to prod", "backend-dev is Synced/", "not Synced/Healthy", "--force"} {
		if !strings.Contains(refused.stderr, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, refused.stderr)
		}
	}
	if open, _, err := giteaClient(t, forgeAdminToken(t)).ListRepoPullRequests(promoteRepo.Owner, promoteRepo.Name, gitea.ListPullRequestsOptions{State: gitea.StateOpen}); err != nil || len(open) != 0 {
		t.Errorf("a refused promotion left %d open pull requests (%v)", len(open), err)
	}

	forced := mustPromote(t, "backend", "--from", "dev", "--to", "prod", "--force")
	body := getPullRequest(t, forced.res.PR.Number).Body
	for _, want := range []string{"overridden with --force", "**Warning:** promoted with --force although backend-dev is Synced/"} {
		if !strings.Contains(body, want) {
			t.Errorf("the forced PR body lacks %q:\n%s", want, body)
		}
	}
	closePullRequest(t, forced.res.PR.Number, forced.res.Branch)
	if pr := getPullRequest(t, forced.res.PR.Number); pr.State != gitea.StateClosed || pr.HasMerged {
		t.Errorf("pull request #%d: state %s merged %v, want closed unmerged", pr.Index, pr.State, pr.HasMerged)
	}
	mustTugWait(t, 5*time.Minute, restore(), "backend-dev")

	// Healthy again, but not at a commit whose dev file carries the tag
	// asked for: refused too, naming the file and line.
	wrongTag := runPromote(t, "backend", "--from", "dev", "--to", "prod", "--tag", "0.3.0")
	if !errors.As(wrongTag.err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("tug promote --tag 0.3.0: %v, want exit 1\n%s%s", wrongTag.err, wrongTag.stdout, wrongTag.stderr)
	}
	t.Logf("refusal of a tag dev does not run:\n%s", wrongTag.stderr)
	want := fmt.Sprintf(`where %s:`, backendDevValues)
	if !strings.Contains(wrongTag.stderr, want) || !strings.Contains(wrongTag.stderr, `not "0.3.0": dev does not run that tag yet`) {
		t.Errorf("the refusal of --tag 0.3.0 does not say %q and why:\n%s", want, wrongTag.stderr)
	}
}

// TestPromoteRerunReusesOpenPR: running the same promotion while its PR is
// open reuses that PR and pushes nothing.
func TestPromoteRerunReusesOpenPR(t *testing.T) {
	restorePromotionState(t)
	mustTugWait(t, 5*time.Minute, forgeHead(t), "backend-dev")
	first := mustPromote(t, "backend", "--from", "dev", "--to", "prod")
	second := mustPromote(t, "backend", "--from", "dev", "--to", "prod")
	if !first.res.PRCreated || second.res.PRCreated || second.res.PR.Number != first.res.PR.Number {
		t.Fatalf("first run PR #%d (created %v), second PR #%d (created %v): want the same PR reused",
			first.res.PR.Number, first.res.PRCreated, second.res.PR.Number, second.res.PRCreated)
	}
	if second.res.Commit != first.res.Commit {
		t.Errorf("the re-run moved the branch: %s → %s", first.res.Commit, second.res.Commit)
	}
	if pr := getPullRequest(t, first.res.PR.Number); pr.Head == nil || pr.Head.Sha != first.res.Commit {
		t.Errorf("pull request head is not the first run's commit %s", first.res.Commit)
	}
	t.Logf("re-run reused #%d in %s", second.res.PR.Number, second.took.Round(time.Millisecond))
	closePullRequest(t, first.res.PR.Number, first.res.Branch)
}

// promoteExtraApps are eight more services for the concurrency test: each
// a dev/prod pair of Applications deploying the backend chart under its own
// release name (so its own Deployment) into shop-dev and shop-prod, the
// only namespaces the shop project permits.
var promoteExtraApps = []string{"e2ep1", "e2ep2", "e2ep3", "e2ep4", "e2ep5", "e2ep6", "e2ep7", "e2ep8"}

const extraAppsFile = "infra/gitops/apps/e2e-promote.yaml"

func extraApplication(name, env, repoURL string) string {
	return fmt.Sprintf(`---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %[1]s-%[2]s
  namespace: argocd
  finalizers:
    - resources-finalizer.argocd.argoproj.io
spec:
  project: shop
  source:
    repoURL: %[3]s
    targetRevision: main
    path: charts/backend
    helm:
      releaseName: %[1]s
      valueFiles:
        - values-%[1]s-%[2]s.yaml
  destination:
    server: https://kubernetes.default.svc
    namespace: shop-%[2]s
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
`, name, env, repoURL)
}

// TestPromoteTenConcurrently: ten `tug promote` processes for ten different
// apps at once (backend, frontend and eight more) → ten PRs, each changing
// only its own prod value file; the reviewer merges all ten at once; main
// then has every new tag (no lost update) and Argo CD runs all ten in prod.
func TestPromoteTenConcurrently(t *testing.T) {
	var added []string
	for _, app := range promoteExtraApps {
		added = append(added, "charts/backend/values-"+app+"-dev.yaml", "charts/backend/values-"+app+"-prod.yaml")
	}
	added = append(added, extraAppsFile)
	// Registered first, so it runs last (cleanups run in reverse): after the
	// restore commit root prunes the extra Applications, and their
	// finalizer deletes what they deployed.
	t.Cleanup(func() {
		eventually(t, 5*time.Minute, "the extra Applications are gone", func(ctx context.Context) error {
			apps, err := appstatus.List(ctx, dynamicClient(t), appstatus.DefaultNamespace)
			if err != nil {
				return err
			}
			for _, a := range apps {
				if strings.HasPrefix(a.Name, "e2ep") {
					return fmt.Errorf("%s still exists", a.Name)
				}
			}
			return nil
		}, func() string { return appStatusTable(t) })
	})
	restorePromotionState(t, added...)

	base := forgeFiles(t, backendDevValues, backendProdValues, "tug.yaml")
	var repoURL string
	for _, line := range strings.Split(string(base["tug.yaml"]), "\n") {
		if v, ok := strings.CutPrefix(line, "repoURL:"); ok {
			repoURL = strings.TrimSpace(v)
		}
	}
	if repoURL == "" {
		t.Fatalf("no repoURL in the forge's tug.yaml:\n%s", base["tug.yaml"])
	}
	files := map[string][]byte{}
	var apps bytes.Buffer
	apps.WriteString("# Eight extra services for e2e/promote_test.go's concurrency test; removed when it ends.\n")
	for _, app := range promoteExtraApps {
		files["charts/backend/values-"+app+"-dev.yaml"] = base[backendDevValues]
		files["charts/backend/values-"+app+"-prod.yaml"] = base[backendProdValues]
		apps.WriteString(extraApplication(app, "dev", repoURL))
		apps.WriteString(extraApplication(app, "prod", repoURL))
	}
	files[extraAppsFile] = apps.Bytes()
	sha := forgeWriteFiles(t, "e2e: eight more services to promote concurrently", files)
	mustTugWait(t, 8*time.Minute, sha, "root")

	all := append([]string{"backend", "frontend"}, promoteExtraApps...)
	runs := make([]promoteRun, len(all))
	environ := promoteEnviron(t)
	var wg sync.WaitGroup
	began := time.Now()
	for i, app := range all {
		wg.Go(func() { runs[i] = runPromoteWith(environ, app, "--from", "dev", "--to", "prod") })
	}
	wg.Wait()
	t.Logf("ten concurrent tug promote → ten PRs open: %s", time.Since(began).Round(time.Millisecond))
	seen := map[int64]string{}
	for i, r := range runs {
		app := all[i]
		if r.err != nil {
			t.Fatalf("tug promote %s: %v\n%s%s", app, r.err, r.stdout, r.stderr)
		}
		if other, dup := seen[r.res.PR.Number]; dup {
			t.Fatalf("%s and %s share PR #%d", app, other, r.res.PR.Number)
		}
		seen[r.res.PR.Number] = app
		want := "charts/" + app + "/values-prod.yaml"
		if app != "backend" && app != "frontend" {
			want = "charts/backend/values-" + app + "-prod.yaml"
		}
		if !r.res.PRCreated || r.res.PR.Head != "promote/"+app+"-prod-0.2.0" || r.res.ValueFile != want {
			t.Errorf("%s: %s", app, mustJSON(r.res))
		}
		if got := pullRequestFiles(t, r.res.PR.Number); len(got) != 1 || got[0] != want {
			t.Errorf("%s: PR #%d changes %v, want only %s", app, r.res.PR.Number, got, want)
		}
		t.Logf("%-8s PR #%d in %s (attempts %d)", app, r.res.PR.Number, r.took.Round(time.Millisecond), r.res.Attempts)
	}

	merges := make([]*forge.PullRequest, len(runs))
	rev := reviewerForge(t)
	mergeStart := time.Now()
	for i, r := range runs {
		wg.Go(func() { merges[i] = approveAndMergeNoFatal(t, rev, r.res.PR.Number) })
	}
	wg.Wait()
	t.Logf("ten concurrent merges: %s", time.Since(mergeStart).Round(time.Millisecond))
	for i, m := range merges {
		if m == nil {
			t.Fatalf("merging %s's PR failed (see above)\n%s", all[i], forgeLogLines("pull", "PR[", "merge"))
		}
	}
	mergedAt := time.Now()

	head := forgeHead(t)
	rels := make([]string, len(runs))
	for i, r := range runs {
		rels[i] = r.res.ValueFile
	}
	onMain := forgeFiles(t, rels...)
	for _, rel := range rels {
		if got := tagOf(t, rel, onMain[rel]); got != "0.2.0" {
			t.Errorf("lost update: %s on main sets %s", rel, got)
		}
	}
	mustTugWait(t, 8*time.Minute, head, "root")
	t.Logf("last of ten merges → root and all children Synced+Healthy at %s: %s", head[:12], time.Since(mergedAt).Round(time.Millisecond))
	for _, app := range all {
		expectProd(t, app, head, "0.2.0")
	}
}

// approveAndMergeNoFatal is approveAndMerge for goroutines: it reports
// with t.Errorf and returns nil on failure.
func approveAndMergeNoFatal(t *testing.T, rev forge.Forge, number int64) *forge.PullRequest {
	ctx := context.Background()
	if err := rev.Approve(ctx, number, "ok"); err != nil {
		t.Errorf("approve #%d: %v", number, err)
		return nil
	}
	pr, err := rev.MergePullRequest(ctx, number, fmt.Sprintf("Merge pull request #%d", number))
	if err != nil {
		t.Errorf("merge #%d: %v", number, err)
		return nil
	}
	return pr
}
