package e2e

// Helpers for tests that change what Argo CD deploys: they commit to the
// lab's forge (Gitea) the way a person would push to the real repository,
// then wait for Argo CD. Every change is a new commit (history is never
// rewritten), and a test restores what it changed with another commit.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
	"k8s.io/client-go/dynamic"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/giteaserver"
)

// forgeBranch is the branch every lab Application tracks.
const forgeBranch = "main"

// forgeRepoURL is the clone URL of the lab's copy of the repository (no
// credentials in it).
func forgeRepoURL(t testing.TB) string {
	t.Helper()
	u := env.status.Endpoints["repository"]
	if u == "" {
		t.Fatalf("the lab status has no repository endpoint: %s", mustJSON(env.status.Endpoints))
	}
	return u
}

// forgeAuth authenticates git over HTTP as the forge's admin with the token
// `tug lab up` stored (0600) in the state folder. The token only travels in
// the Authorization header: never in a URL, a log line or .git/config.
func forgeAuth(t testing.TB) *githttp.BasicAuth {
	t.Helper()
	data, err := os.ReadFile(env.layout.ForgeTokenFile())
	if err != nil {
		t.Fatalf("forge admin token: %v", err)
	}
	return &githttp.BasicAuth{Username: giteaserver.DefaultAdminUser, Password: strings.TrimSpace(string(data))}
}

// forgeHead returns the commit the forge's main branch points at (what
// `git ls-remote <repo> refs/heads/main` prints).
func forgeHead(t testing.TB) string {
	t.Helper()
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{forgeRepoURL(t)}})
	refs, err := rem.List(&git.ListOptions{Auth: forgeAuth(t)})
	if err != nil {
		t.Fatalf("ls-remote %s: %v", forgeRepoURL(t), err)
	}
	for _, r := range refs {
		if r.Name() == plumbing.NewBranchReferenceName(forgeBranch) {
			return r.Hash().String()
		}
	}
	t.Fatalf("the forge has no branch %s", forgeBranch)
	return ""
}

// forgeClone clones the forge's main branch into a fresh temporary folder.
func forgeClone(t testing.TB) (string, *git.Repository) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
		URL: forgeRepoURL(t), Auth: forgeAuth(t),
		ReferenceName: plumbing.NewBranchReferenceName(forgeBranch), SingleBranch: true,
	})
	if err != nil {
		t.Fatalf("clone %s: %v", forgeRepoURL(t), err)
	}
	return dir, r
}

// forgeCommit clones the forge, lets edit change the working tree (dir is
// its root), commits every change with message and pushes to main. It
// returns the new commit's hash. When someone else pushed in between, it
// starts again from a fresh clone, so edit must be repeatable.
func forgeCommit(t testing.TB, message string, edit func(dir string) error) string {
	t.Helper()
	for attempt := 1; ; attempt++ {
		sha, err := tryForgeCommit(t, message, edit)
		if err == nil {
			t.Logf("pushed %s to the forge: %s", sha[:12], firstLine(message))
			return sha
		}
		if attempt < 4 && (errors.Is(err, git.ErrNonFastForwardUpdate) || strings.Contains(err.Error(), "non-fast-forward") ||
			strings.Contains(err.Error(), "fetch first")) {
			continue
		}
		t.Fatalf("commit %q to the forge: %v", firstLine(message), err)
	}
}

func tryForgeCommit(t testing.TB, message string, edit func(dir string) error) (string, error) {
	dir, r := forgeClone(t)
	if err := edit(dir); err != nil {
		return "", fmt.Errorf("edit: %w", err)
	}
	wt, err := r.Worktree()
	if err != nil {
		return "", err
	}
	st, err := wt.Status()
	if err != nil {
		return "", err
	}
	if st.IsClean() {
		return "", fmt.Errorf("the edit changed nothing")
	}
	for path, s := range st {
		if s.Worktree == git.Deleted {
			_, err = wt.Remove(path)
		} else {
			_, err = wt.Add(path)
		}
		if err != nil {
			return "", fmt.Errorf("stage %s: %w", path, err)
		}
	}
	sig := &object.Signature{Name: "tug e2e", Email: "e2e@tug.invalid", When: time.Now()}
	h, err := wt.Commit(message, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref := "refs/heads/" + forgeBranch
	err = r.PushContext(ctx, &git.PushOptions{RemoteName: "origin", Auth: forgeAuth(t),
		RefSpecs: []config.RefSpec{config.RefSpec(ref + ":" + ref)}})
	if err != nil {
		return "", fmt.Errorf("push: %w", err)
	}
	return h.String(), nil
}

// forgeWriteFiles commits files (path relative to the repository root →
// content; nil content deletes the file) and returns the commit.
func forgeWriteFiles(t testing.TB, message string, files map[string][]byte) string {
	t.Helper()
	return forgeCommit(t, message, func(dir string) error {
		for rel, data := range files {
			p := filepath.Join(dir, filepath.FromSlash(rel))
			if data == nil {
				if err := os.Remove(p); err != nil {
					return err
				}
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
}

// forgeFile returns a file's content at the forge's head (nil if absent).
func forgeFile(t testing.TB, rel string) []byte {
	t.Helper()
	dir, _ := forgeClone(t)
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// forgeReplace commits a textual replacement in one file (old must occur)
// and returns the commit plus a restore function that commits the file's
// previous content back and returns that commit. The test registers
// nothing itself: call restore (or t.Cleanup it) as the test needs.
func forgeReplace(t testing.TB, rel, old, new, message string) (sha string, restore func() string) {
	t.Helper()
	before := forgeFile(t, rel)
	if before == nil {
		t.Fatalf("%s is not in the forge repository", rel)
	}
	if !strings.Contains(string(before), old) {
		t.Fatalf("%s on the forge does not contain %q", rel, old)
	}
	after := strings.Replace(string(before), old, new, 1)
	sha = forgeWriteFiles(t, message, map[string][]byte{rel: []byte(after)})
	restored := ""
	return sha, func() string {
		if restored == "" {
			restored = forgeWriteFiles(t, "Revert: "+message, map[string][]byte{rel: before})
		}
		return restored
	}
}

// tugWait runs `tug wait` for apps (and their children) at revision.
func tugWait(t testing.TB, timeout time.Duration, revision string, apps ...string) (string, error) {
	t.Helper()
	args := append([]string{"wait", "--kubeconfig", env.kubeconfig, "--timeout", timeout.String()}, apps...)
	if revision != "" {
		args = append(args, "--revision", revision)
	}
	return tugCmd(context.Background(), timeout+30*time.Second, args...)
}

// mustTugWait is tugWait that fails the test when the apps are not ready.
func mustTugWait(t testing.TB, timeout time.Duration, revision string, apps ...string) string {
	t.Helper()
	out, err := tugWait(t, timeout, revision, apps...)
	if err != nil {
		t.Fatalf("tug wait %s --revision %s: %v\n%s", strings.Join(apps, " "), revision, err, out)
	}
	return out
}

// dynamicClient talks to the lab's API server as its administrator.
func dynamicClient(t testing.TB) dynamic.Interface {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

// application reads one Application (nil if it does not exist).
func application(ctx context.Context, t testing.TB, name string) (*v1alpha1.Application, error) {
	apps, err := appstatus.List(ctx, dynamicClient(t), appstatus.DefaultNamespace)
	if err != nil {
		return nil, err
	}
	for i := range apps {
		if apps[i].Name == name {
			return &apps[i], nil
		}
	}
	return nil, nil
}

// appStatusTable is `tug status` for failure messages.
func appStatusTable(t testing.TB) string {
	out, _ := tugCmd(context.Background(), time.Minute, "status", "--kubeconfig", env.kubeconfig)
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// replaceInFile replaces the first old with new in a file; old must occur.
func replaceInFile(path, old, new string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !strings.Contains(string(data), old) {
		return fmt.Errorf("%s does not contain %q", path, old)
	}
	return os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644)
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// forgeLogLines is what Gitea logged at warning level or above, plus its
// lines holding any of words: a merge that stays unmergeable is explained
// there (a mergeability check that failed, a lock it waited on).
func forgeLogLines(words ...string) string {
	data, err := os.ReadFile(env.layout.Log("gitea"))
	if err != nil {
		return fmt.Sprintf("no Gitea log: %v", err)
	}
	var keep []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "[E]") || strings.Contains(line, "[W]") || slices.ContainsFunc(words, func(w string) bool { return strings.Contains(line, w) }) {
			keep = append(keep, line)
		}
	}
	return "--- Gitea's log (errors, warnings and lines about pull requests) ---\n" + tailLines(strings.Join(keep, "\n"), 80)
}
