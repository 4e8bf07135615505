package diff

import (
	"context"
	"log/slog"
	"os"

	"golang.org/x/sync/errgroup"
)

// Options say which two revisions to compare.
type Options struct {
	// Dir is any directory inside the git work tree (default ".").
	Dir string
	// Base is a commit, branch or tag; "" means the merge base of HEAD
	// with the default branch.
	Base string
	// Head is a commit, branch or tag; WorkingTree ("") means the files on
	// disk, uncommitted and untracked ones included.
	Head string
	// Parallel is how many Applications render at once per revision; 0
	// means GOMAXPROCS.
	Parallel int
	Logger   *slog.Logger
}

// Run renders every Application at both revisions and compares them.
// Committed revisions are extracted from git objects into a temporary
// directory, removed afterwards.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Dir == "" {
		o.Dir = "."
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	top, err := topLevel(ctx, o.Dir)
	if err != nil {
		return nil, err
	}
	g := gitRepo{dir: top}
	res := &Result{}
	if o.Base == "" {
		res.Base.Ref, res.Base.Commit, err = g.defaultBase(ctx)
	} else {
		res.Base.Ref = o.Base
		res.Base.Commit, err = g.commit(ctx, o.Base)
	}
	if err != nil {
		return nil, err
	}
	res.Head.Ref = "working tree"
	if o.Head != WorkingTree {
		res.Head.Ref = o.Head
		if res.Head.Commit, err = g.commit(ctx, o.Head); err != nil {
			return nil, err
		}
	}
	changed, err := g.changedFiles(ctx, res.Base.Commit, res.Head.Commit)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "tug-diff-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	var base, head *Snapshot
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		var err error
		base, err = snapshotAt(ectx, g, res.Base.Commit, tmp+"/base", o.Parallel)
		return err
	})
	eg.Go(func() error {
		var err error
		if res.Head.Commit == "" {
			head, err = Render(ectx, top, o.Parallel)
		} else {
			head, err = snapshotAt(ectx, g, res.Head.Commit, tmp+"/head", o.Parallel)
		}
		return err
	})
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	log.Debug("rendered", "base", len(base.Apps), "head", len(head.Apps), "changedFiles", len(changed))
	cmp, err := Compare(base, head, changed)
	if err != nil {
		return nil, err
	}
	cmp.Base, cmp.Head = res.Base, res.Head
	return cmp, nil
}

func snapshotAt(ctx context.Context, g gitRepo, commit, dir string, parallel int) (*Snapshot, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := g.extract(ctx, commit, dir); err != nil {
		return nil, err
	}
	return Render(ctx, dir, parallel)
}
