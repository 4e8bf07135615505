package promote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// clone is a temporary clone of the forge's default branch. Promotion never
// touches the user's working tree.
type clone struct {
	dir  string
	repo *git.Repository
	base string        // branch name
	head plumbing.Hash // base branch head at clone time
	url  string
	auth transport.AuthMethod
}

func cloneBase(ctx context.Context, url string, auth transport.AuthMethod, base string) (*clone, error) {
	dir, err := os.MkdirTemp("", "tug-promote-*")
	if err != nil {
		return nil, err
	}
	r, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
		URL: url, Auth: auth, ReferenceName: plumbing.NewBranchReferenceName(base),
		SingleBranch: true, Tags: git.NoTags,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("clone %s (branch %s): %w", url, base, err)
	}
	ref, err := r.Head()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &clone{dir: dir, repo: r, base: base, head: ref.Hash(), url: url, auth: auth}, nil
}

func (c *clone) Close() { os.RemoveAll(c.dir) }

// remoteHeads lists the forge's branch heads without touching the clone.
func remoteHeads(ctx context.Context, url string, auth transport.AuthMethod) (map[string]plumbing.Hash, error) {
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return nil, fmt.Errorf("list branches of %s: %w", url, err)
	}
	heads := map[string]plumbing.Hash{}
	for _, r := range refs {
		if r.Name().IsBranch() {
			heads[r.Name().Short()] = r.Hash()
		}
	}
	return heads, nil
}

// fileAt reads a repository-relative file at a commit of the clone.
func (c *clone) fileAt(rev plumbing.Hash, rel string) ([]byte, error) {
	commit, err := c.repo.CommitObject(rev)
	if err != nil {
		return nil, fmt.Errorf("commit %s is not in %s's history of %s: %w", short(rev), c.url, c.base, err)
	}
	f, err := commit.File(rel)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", rel, short(rev), err)
	}
	rd, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// fetchBranch fetches a remote branch into refs/remotes/origin/NAME.
func (c *clone) fetchBranch(ctx context.Context, branch string) (plumbing.Hash, error) {
	spec := config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/remotes/origin/%s", branch, branch))
	err := c.repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: c.auth, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return plumbing.ZeroHash, fmt.Errorf("fetch %s: %w", branch, err)
	}
	ref, err := c.repo.Reference(plumbing.NewRemoteReferenceName("origin", branch), true)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return ref.Hash(), nil
}

// commitFile writes data to rel and commits it on a new local branch
// started at the base head.
func (c *clone) commitFile(branch, rel string, data []byte, message string, author object.Signature) (plumbing.Hash, error) {
	wt, err := c.repo.Worktree()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Hash: c.head, Create: true}); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("create branch %s: %w", branch, err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, filepath.FromSlash(rel)), data, 0o644); err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := wt.Add(rel); err != nil {
		return plumbing.ZeroHash, err
	}
	author.When = time.Now()
	return wt.Commit(message, &git.CommitOptions{Author: &author, Committer: &author})
}

// pushBranch pushes the local branch to a new remote branch of the same
// name. It never forces: an existing remote branch that is not an ancestor
// makes the push fail.
func (c *clone) pushBranch(ctx context.Context, branch string) error {
	ref := plumbing.NewBranchReferenceName(branch)
	spec := config.RefSpec(ref.String() + ":" + ref.String())
	err := c.repo.PushContext(ctx, &git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: c.auth})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("push %s: %w", branch, err)
	}
	return nil
}

func short(h plumbing.Hash) string { return h.String()[:10] }
