package giteaserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/tug-gitops/tug/internal/fsutil"
)

// Client returns a Gitea SDK client authenticated as the admin, bound to
// ctx (the SDK carries its context on the client).
func (s *Server) Client(ctx context.Context) (*gitea.Client, error) {
	return s.clientFor(ctx, s.token)
}

func (s *Server) clientFor(ctx context.Context, token string) (*gitea.Client, error) {
	c, err := gitea.NewClient(s.url, gitea.SetContext(ctx), gitea.SetToken(token), gitea.SetGiteaVersion(sdkVersion(s.version)))
	if err != nil {
		return nil, fmt.Errorf("giteaserver: gitea client: %w", err)
	}
	return c, nil
}

// RepoURL is the HTTP clone URL of owner/name. It carries no credentials;
// pass GitAuth to go-git.
func (s *Server) RepoURL(owner, name string) string {
	return RepoURLAt(s.url, owner, name)
}

// RepoURLAt is the clone URL of owner/name on the Gitea at baseURL.
func RepoURLAt(baseURL, owner, name string) string {
	return fmt.Sprintf("%s/%s/%s.git", baseURL, owner, name)
}

// GitAuth authenticates git over HTTP as the admin with its token, kept out
// of URLs so it never lands in logs or .git/config.
func (s *Server) GitAuth() *githttp.BasicAuth {
	return &githttp.BasicAuth{Username: s.opts.AdminUser, Password: s.token}
}

// CreateRepo creates owner/name, empty, and returns it; an existing
// repository is returned as is. An owner other than the admin is an
// organization, created when missing (e.g. "tug-gitops", so the lab's URL
// path matches the real one).
func (s *Server) CreateRepo(ctx context.Context, owner, name string) (*gitea.Repository, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	if r, resp, err := c.GetRepo(owner, name); err == nil {
		return r, nil
	} else if resp == nil || resp.StatusCode != http.StatusNotFound {
		return nil, fmt.Errorf("giteaserver: get repo %s/%s: %w", owner, name, err)
	}
	opt := gitea.CreateRepoOption{Name: name, DefaultBranch: "main"}
	if owner == s.opts.AdminUser {
		r, _, err := c.CreateRepo(opt)
		if err != nil {
			return nil, fmt.Errorf("giteaserver: create repo %s/%s: %w", owner, name, err)
		}
		return r, nil
	}
	if err := ensureOrg(c, owner); err != nil {
		return nil, err
	}
	r, _, err := c.CreateOrgRepo(owner, opt)
	if err != nil {
		return nil, fmt.Errorf("giteaserver: create repo %s/%s: %w", owner, name, err)
	}
	return r, nil
}

// ensureOrg creates the public organization owner when missing.
func ensureOrg(c *gitea.Client, owner string) error {
	_, resp, err := c.GetOrg(owner)
	if err == nil {
		return nil
	}
	if resp == nil || resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("giteaserver: get org %s: %w", owner, err)
	}
	if _, _, err := c.CreateOrg(gitea.CreateOrgOption{Name: owner, Visibility: gitea.VisibleTypePublic}); err != nil {
		return fmt.Errorf("giteaserver: create org %s: %w", owner, err)
	}
	return nil
}

// CreateUser creates a non-admin user (e.g. a reviewer) and returns an
// access token for it with TokenScopes. The password is random and
// discarded after the token is made.
func (s *Server) CreateUser(ctx context.Context, username string) (token string, err error) {
	c, err := s.Client(ctx)
	if err != nil {
		return "", err
	}
	password := randomString(32)
	mustChange := false
	_, _, err = c.AdminCreateUser(gitea.CreateUserOption{
		Username: username, Email: username + "@noreply.localhost", Password: password,
		MustChangePassword: &mustChange, SendNotify: false,
	})
	if err != nil {
		return "", fmt.Errorf("giteaserver: create user %s: %w", username, err)
	}
	uc, err := gitea.NewClient(s.url, gitea.SetContext(ctx), gitea.SetBasicAuth(username, password), gitea.SetGiteaVersion(sdkVersion(s.version)))
	if err != nil {
		return "", err
	}
	t, _, err := uc.CreateAccessToken(gitea.CreateAccessTokenOption{Name: "tug", Scopes: scopeList()})
	if err != nil {
		return "", fmt.Errorf("giteaserver: token for %s: %w", username, err)
	}
	return t.Token, nil
}

func scopeList() []gitea.AccessTokenScope {
	return []gitea.AccessTokenScope{"write:organization", "write:repository", "write:issue", "write:user"}
}

// Push pushes refspecs (e.g. "refs/heads/main:refs/heads/main") of the
// local repository at dir to owner/name, authenticating with the token.
// Never forces unless a refspec starts with "+".
func (s *Server) Push(ctx context.Context, dir, owner, name string, refspecs ...string) error {
	r, err := git.PlainOpen(dir)
	if err != nil {
		return fmt.Errorf("giteaserver: open %s: %w", dir, err)
	}
	specs := make([]config.RefSpec, 0, len(refspecs))
	for _, rs := range refspecs {
		specs = append(specs, config.RefSpec(rs))
	}
	// An anonymous remote: the URL is never written to .git/config.
	rem := git.NewRemote(r.Storer, &config.RemoteConfig{Name: "anonymous", URLs: []string{s.RepoURL(owner, name)}})
	err = rem.PushContext(ctx, &git.PushOptions{RemoteName: "anonymous", RefSpecs: specs, Auth: s.GitAuth()})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("giteaserver: push %s to %s/%s: %w", dir, owner, name, err)
	}
	return s.waitNotEmpty(ctx, owner, name)
}

// waitNotEmpty waits until Gitea has processed a push into an empty
// repository: it does so in a queue after the push returns, and until then
// the repository counts as empty (its pull request API answers 404).
// PushCommit pushes commit, from the git repository at gitDir, to branch
// of owner/name with the git CLI, which packs a repository far faster than
// go-git. Never forced: a branch that has moved elsewhere is an error. The
// token travels in a header set through the environment (GIT_CONFIG_*),
// never on a command line or in a URL.
func (s *Server) PushCommit(ctx context.Context, gitDir, commit, owner, name, branch string) error {
	basic := base64.StdEncoding.EncodeToString([]byte(s.opts.AdminUser + ":" + s.token))
	auth := []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.extraHeader", "GIT_CONFIG_VALUE_0=Authorization: Basic " + basic}
	if err := runGit(ctx, auth, "--git-dir", gitDir, "push", "--quiet", s.RepoURL(owner, name), commit+":refs/heads/"+branch); err != nil {
		return fmt.Errorf("giteaserver: push %s to %s/%s: %w", commit, owner, name, err)
	}
	return s.waitNotEmpty(ctx, owner, name)
}

// runGit runs git with env added, without the user's or the system's
// configuration and never prompting; its error carries git's stderr.
func runGit(ctx context.Context, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = append(append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (s *Server) waitNotEmpty(ctx context.Context, owner, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := s.Client(ctx)
	if err != nil {
		return err
	}
	for {
		r, _, err := c.GetRepo(owner, name)
		if err == nil && !r.Empty {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("giteaserver: %s/%s still empty 30 s after the push (err %v); log tail:\n%s", owner, name, err, s.LogTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PushDir commits the files of srcDir (without any .git) as the single
// commit of a fresh history and pushes it to branch of owner/name, creating
// the repository when missing. It returns the commit hash. Tests use it to
// seed a repository from testdata.
func (s *Server) PushDir(ctx context.Context, srcDir, owner, name, branch, message string) (string, error) {
	if _, err := s.CreateRepo(ctx, owner, name); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp("", "giteaserver-push-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if err := fsutil.CopyTree(srcDir, work); err != nil {
		return "", fmt.Errorf("giteaserver: copy %s: %w", srcDir, err)
	}
	r, err := git.PlainInitWithOptions(work, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(branch)},
	})
	if err != nil {
		return "", err
	}
	wt, err := r.Worktree()
	if err != nil {
		return "", err
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return "", err
	}
	sig := &object.Signature{Name: s.opts.AdminUser, Email: s.opts.AdminUser + "@noreply.localhost", When: time.Now()}
	h, err := wt.Commit(message, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return "", err
	}
	ref := "refs/heads/" + branch
	if err := s.Push(ctx, work, owner, name, ref+":"+ref); err != nil {
		return "", err
	}
	return h.String(), nil
}

// sdkVersion is the version to tell the SDK: a binary built from the Go
// module without -X main.Version reports "development", which the SDK
// cannot parse; "" makes it assume a current server.
func sdkVersion(v string) string {
	if v == "" || v[0] < '0' || v[0] > '9' {
		return ""
	}
	return v
}
