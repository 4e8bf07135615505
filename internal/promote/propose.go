package promote

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/fsutil"
	"github.com/tug-gitops/tug/internal/yamledit"
)

// Edit sets the scalar at Key (a dotted path) of a value file to Value.
type Edit struct{ Key, Value string }

// change is what one pull request does: edits to one value file.
type change struct {
	file   string // repository-relative value file
	edits  []Edit // what the branch must set (checked on an open PR)
	edited []byte // the file after the edits
	branch string
	title  string
	body   string
	// message is the commit message.
	message string
}

// proposal opens or reuses the one pull request that makes a change, the
// part promote and release share: it works in a temporary clone of the
// forge's default branch, rebuilds the change when the base moves before
// the push, reuses an open pull request of the same branch after checking
// it sets the same values, and never force-pushes.
type proposal struct {
	forge      forge.Forge
	author     object.Signature
	logger     *slog.Logger
	dryRun     bool
	beforePush func(ctx context.Context, attempt int) error
	// plan reads the repository at root (a clone of the base, c; or a
	// scratch copy of the working tree with c nil) and returns the change,
	// or nil when there is nothing to change. It fills the Result it
	// closes over, and runs again when the base moved.
	plan func(ctx context.Context, root string, c *clone) (*change, error)
}

// run makes the change on the forge (or, dry, only plans it).
func (p *proposal) run(ctx context.Context, res *Result) error {
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		moved, err := p.attempt(ctx, res, attempt)
		if err != nil {
			return err
		}
		if !moved {
			return nil
		}
		if attempt >= maxAttempts {
			return fmt.Errorf("%s kept moving during %d attempts; try again", res.Base, maxAttempts)
		}
		p.logger.Info("base branch moved while preparing the change; rebuilding on the new head", "branch", res.Base, "attempt", attempt+1)
	}
}

// attempt clones the base, plans the change and, unless dry-run or
// nothing to do, pushes it and opens (or reuses) the PR. moved reports that
// the base branch moved before the push; the caller then tries again.
func (p *proposal) attempt(ctx context.Context, res *Result, attempt int) (moved bool, err error) {
	f := p.forge
	res.Base = f.DefaultBranch()
	c, err := cloneBase(ctx, f.CloneURL(), f.GitAuth(), res.Base)
	if err != nil {
		return false, err
	}
	defer c.Close()
	res.BaseCommit = c.head.String()

	ch, err := p.plan(ctx, c.dir, c)
	if err != nil || ch == nil || p.dryRun {
		return false, err
	}

	res.Branch = ch.branch
	if pr, err := f.FindOpenPullRequest(ctx, res.Branch, res.Base); err != nil {
		return false, err
	} else if pr != nil {
		return false, p.reuseOpen(ctx, res, c, pr, ch)
	}

	commit, err := c.commitFile(res.Branch, ch.file, ch.edited, ch.message, p.author)
	if err != nil {
		return false, err
	}
	res.Commit = commit.String()
	if p.beforePush != nil {
		if err := p.beforePush(ctx, attempt); err != nil {
			return false, err
		}
	}
	heads, err := remoteHeads(ctx, c.url, c.auth)
	if err != nil {
		return false, err
	}
	if heads[res.Base] != c.head {
		return true, nil
	}
	if existing, ok := heads[res.Branch]; ok && existing != commit {
		// A branch of that name is left from an earlier change whose PR
		// is closed or merged: never overwrite it, use a name tied to this base.
		res.Branch = res.Branch + "-" + c.head.String()[:7]
		if commit, err = c.commitFile(res.Branch, ch.file, ch.edited, ch.message, p.author); err != nil {
			return false, err
		}
		res.Commit = commit.String()
	}
	if err := c.pushBranch(ctx, res.Branch); err != nil {
		return false, fmt.Errorf("%w (tug never force-pushes; delete the stale branch %s on the forge if it is yours)", err, res.Branch)
	}
	pr, created, err := f.OpenPullRequest(ctx, forge.NewPullRequest{Head: res.Branch, Base: res.Base, Title: ch.title, Body: ch.body})
	if err != nil {
		return false, err
	}
	res.PR, res.PRCreated = pr, created
	p.logger.Info("pull request open", "number", pr.Number, "url", pr.URL, "created", created)
	return false, nil
}

// reuseOpen adopts the open PR for the same change after checking that its
// branch really sets every value.
func (p *proposal) reuseOpen(ctx context.Context, res *Result, c *clone, pr *forge.PullRequest, ch *change) error {
	tip, err := c.fetchBranch(ctx, pr.Head)
	if err != nil {
		return err
	}
	data, err := c.fileAt(tip, ch.file)
	if err != nil {
		return err
	}
	for _, e := range ch.edits {
		got, err := yamledit.Get(data, e.Key)
		if err != nil {
			return fmt.Errorf("open pull request #%d (%s): %s: %w", pr.Number, pr.URL, ch.file, err)
		}
		if got.Value != e.Value {
			return fmt.Errorf("open pull request #%d (%s) on branch %s sets %s to %q, not %q; close it or fix its branch", pr.Number, pr.URL, pr.Head, e.Key, got.Value, e.Value)
		}
	}
	res.PR, res.PRCreated, res.Commit = pr, false, tip.String()
	p.logger.Info("reusing the open pull request", "number", pr.Number, "url", pr.URL)
	return nil
}

// local plans the change from the repository on disk, for a dry run
// without a forge.
func (p *proposal) local(ctx context.Context, repoDir string) error {
	root, err := filepath.Abs(repoDir)
	if err != nil {
		return err
	}
	// Render and edit in a scratch copy: the working tree stays untouched
	// even for the moment the manifest diff needs the edited file on disk.
	scratch, err := os.MkdirTemp("", "tug-promote-dry-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	if err := fsutil.CopyTree(root, scratch); err != nil {
		return fmt.Errorf("copy %s for the dry run: %w", root, err)
	}
	_, err = p.plan(ctx, scratch, nil)
	return err
}

// merge merges the open pull request.
func (p *proposal) merge(ctx context.Context, res *Result) error {
	merged, err := p.forge.MergePullRequest(ctx, res.PR.Number, fmt.Sprintf("%s (#%d)", res.mergeMsg, res.PR.Number))
	if err != nil {
		return err
	}
	res.PR, res.Merged, res.MergeCommit = merged, true, merged.MergeCommit
	return nil
}
