package lab

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tug-gitops/tug/internal/config"
	"github.com/tug-gitops/tug/internal/giteaserver"
)

// The forge hosts the lab's copy of the GitOps repository at the same
// owner/name path as the real one, so Argo CD, promotions and tests work
// against a real git server with pull requests.
const (
	ForgeOwner = "tug-gitops"
	ForgeRepo  = "tug"
)

// startForge starts Gitea and, the first time, pushes a snapshot of the
// repository's HEAD with its repository URL retargeted at the forge.
func (l *Lab) startForge(ctx context.Context, bin string) error {
	port, err := l.ports.get("gitea")
	if err != nil {
		return err
	}
	srv, err := giteaserver.Start(ctx, giteaserver.Options{
		Binary: bin, StateDir: filepath.Join(l.dir, "gitea"), Port: port, Logger: l.opts.Log,
	})
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.forge = srv
	l.closers = append(l.closers, func() { _ = srv.Stop(context.Background()) })
	l.mu.Unlock()
	repo, err := srv.CreateRepo(ctx, ForgeOwner, ForgeRepo)
	if err != nil {
		return err
	}
	// Gitea updates a repository's "empty" flag in a queue after a push, so
	// ask for the branch itself.
	if hasMain, err := l.forgeHasBranch(ctx, "main"); err != nil {
		return err
	} else if hasMain || !repo.Empty {
		l.opts.Log.Info("forge repository exists; keeping its history", "repo", l.ForgeRepoURL())
		return nil
	}
	return l.pushSnapshot(ctx)
}

func (l *Lab) forgeHasBranch(ctx context.Context, branch string) (bool, error) {
	c, err := l.forge.Client(ctx)
	if err != nil {
		return false, err
	}
	_, resp, err := c.GetRepoBranch(ForgeOwner, ForgeRepo, branch)
	if err == nil {
		return true, nil
	}
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	return false, fmt.Errorf("forge: read branch %s: %w", branch, err)
}

// ForgeRepoURL is the clone URL of the lab's copy of the repository.
func (l *Lab) ForgeRepoURL() string {
	if l.forge == nil {
		return ""
	}
	return l.forge.RepoURL(ForgeOwner, ForgeRepo)
}

// Forge returns the lab's Gitea.
func (l *Lab) Forge() *giteaserver.Server { return l.forge }

// pushSnapshot exports the committed HEAD of the repository (what a clone
// would see: uncommitted changes stay out), points every Argo CD object
// and tug.yaml at the forge, and pushes it as the forge's main branch.
func (l *Lab) pushSnapshot(ctx context.Context) error {
	cfg, err := config.Load(l.opts.RepoRoot)
	if err != nil {
		return err
	}
	if cfg.RepoURL == "" {
		return fmt.Errorf("%s has no repoURL: the lab needs it to retarget its copy", filepath.Join(l.opts.RepoRoot, "tug.yaml"))
	}
	work, err := os.MkdirTemp("", "tug-lab-snapshot-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	head, err := exportHEAD(ctx, l.opts.RepoRoot, work)
	if err != nil {
		return err
	}
	n, err := retargetTree(work, cfg.RepoURL, l.ForgeRepoURL())
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Snapshot of %s at %s for the lab\n\nRepository URL %s replaced by the lab forge's %s in %d files.", filepath.Base(l.opts.RepoRoot), head, cfg.RepoURL, l.ForgeRepoURL(), n)
	// The git CLI commits a tree this size in milliseconds (go-git's
	// worktree add takes seconds); the push goes through the forge package.
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", msg}} {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=tug lab", "GIT_AUTHOR_EMAIL=lab@tug.invalid", "GIT_COMMITTER_NAME=tug lab", "GIT_COMMITTER_EMAIL=lab@tug.invalid", "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s in the snapshot: %v\n%s", args[0], err, out)
		}
	}
	// A Gitea that has just created the repository can answer the first
	// push with a 500 on a busy machine: retry a few times, never forcing.
	err = poll(ctx, 30*time.Second, func() error {
		err := l.forge.Push(ctx, work, ForgeOwner, ForgeRepo, "refs/heads/main:refs/heads/main")
		if err != nil && !strings.Contains(err.Error(), "status code: 5") {
			return permanentError{err}
		}
		return err
	})
	if err != nil {
		return err
	}
	l.opts.Log.Info("pushed repository snapshot to the forge", "repo", l.ForgeRepoURL(), "from", head)
	return nil
}

// exportHEAD writes the tree of HEAD into dir with `git archive` and
// returns HEAD's abbreviated hash.
func exportHEAD(ctx context.Context, repo, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "", fmt.Errorf("%s is not a git repository with a commit (the lab deploys what is committed): %w", repo, err)
	}
	head := strings.TrimSpace(string(out))
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", "-C", repo, "archive", "--format=tar", "HEAD")
	cmd.Stdout = &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git archive HEAD in %s: %w", repo, err)
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return head, nil
		}
		if err != nil {
			return "", err
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(os.PathSeparator)) {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return "", err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return "", err
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return "", err
			}
			if err := os.WriteFile(target, data, os.FileMode(h.Mode)&0o755|0o600); err != nil {
				return "", err
			}
		}
	}
}

// retargetTree replaces the exact repository URL in tug.yaml and the YAML
// files under infra/gitops, and returns how many files changed.
func retargetTree(dir, from, to string) (int, error) {
	n := 0
	files := []string{filepath.Join(dir, "tug.yaml")}
	err := filepath.WalkDir(filepath.Join(dir, "infra", "gitops"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		if !bytes.Contains(data, []byte(from)) {
			continue
		}
		if err := os.WriteFile(f, bytes.ReplaceAll(data, []byte(from), []byte(to)), 0o644); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}
