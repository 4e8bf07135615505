package giteaserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"code.gitea.io/sdk/gitea"
)

// RepoPath is where a Gitea whose state is in stateDir keeps the git
// repository of owner/name.
func RepoPath(stateDir, owner, name string) string {
	return filepath.Join(stateDir, "repositories", strings.ToLower(owner), strings.ToLower(name)+".git")
}

// HasRepo says whether Gitea keeps a repository for owner/name: its folder
// is there with Gitea's hooks in it, which Gitea installs when it creates
// or adopts a repository. A folder SeedRepo wrote has none until then.
func HasRepo(stateDir, owner, name string) bool {
	_, err := os.Stat(filepath.Join(RepoPath(stateDir, owner, name), "hooks", "post-receive.d", "gitea"))
	return err == nil
}

// SeedRepo writes commit, from the git repository at gitDir, as branch of a
// new repository at RepoPath(stateDir, owner, name). That must not be
// Gitea's already (HasRepo); an earlier seed Gitea never adopted (a start
// stopped in between) is replaced. It needs no running Gitea, so it can
// run while Gitea starts, and git pushes locally, so none of Gitea's hooks
// run: each would be a new gitea process, three per push. The repository
// is built beside its place and renamed into it, so it is there whole or
// not at all; AdoptRepo then makes it Gitea's.
func SeedRepo(ctx context.Context, stateDir, gitDir, commit, owner, name, branch string) error {
	dst := RepoPath(stateDir, owner, name)
	if HasRepo(stateDir, owner, name) {
		return fmt.Errorf("giteaserver: seed %s/%s: Gitea already has a repository at %s", owner, name, dst)
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(stateDir, "seed-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	steps := [][]string{
		{"init", "--quiet", "--bare", "--initial-branch", branch, tmp},
		{"--git-dir", gitDir, "push", "--quiet", tmp, commit + ":refs/heads/" + branch},
	}
	for _, args := range steps {
		if err := runGit(ctx, nil, args...); err != nil {
			return fmt.Errorf("giteaserver: seed %s/%s: git %s: %w", owner, name, args[0], err)
		}
	}
	return os.Rename(tmp, dst)
}

// AdoptRepo makes the repository SeedRepo wrote Gitea's, as the public
// repository owner/name; an organization owner is created when missing.
// Gitea reads its branches from disk as it adopts it, and installs its
// hooks for the pushes that follow.
func (s *Server) AdoptRepo(ctx context.Context, owner, name string) (*gitea.Repository, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	if owner != s.opts.AdminUser {
		if err := ensureOrg(c, owner); err != nil {
			return nil, err
		}
	}
	if err := s.adopt(ctx, owner, name); err != nil {
		return nil, err
	}
	// Gitea adopts a repository as private.
	public := false
	r, _, err := c.EditRepo(owner, name, gitea.EditRepoOption{Private: &public})
	if err != nil {
		return nil, fmt.Errorf("giteaserver: make %s/%s public: %w", owner, name, err)
	}
	return r, nil
}

// adopt asks Gitea's admin API to adopt owner/name (the SDK has no call for it).
func (s *Server) adopt(ctx context.Context, owner, name string) error {
	url := fmt.Sprintf("%s/api/v1/admin/unadopted/%s/%s", s.url, owner, name)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+s.token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("giteaserver: adopt %s/%s: %w", owner, name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("giteaserver: adopt %s/%s: %s: %s", owner, name, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
