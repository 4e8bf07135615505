package diff

import (
	"context"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/tug-gitops/tug/internal/apptree"
	"github.com/tug-gitops/tug/internal/repo"
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
	// renderBoth renders every Application at both revisions, none taken
	// over from the base (tests compare the two ways).
	renderBoth bool
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

	// A revision written to a folder has no remote: a repository whose
	// tug.yaml names no repoURL is known by its origin, as in the checkout.
	origin := sync.OnceValue(func() string {
		u, _ := g.run(ctx, "config", "--get", "remote.origin.url")
		return strings.TrimSpace(u)
	})
	blobs, err := g.blobStore(ctx)
	if err != nil {
		return nil, err
	}
	// Both revisions are written and loaded at once; the head renders
	// after the base so that it can take over the base's render of every
	// Application nothing it reads has changed for.
	var baseRepo, headRepo *repo.Repo
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		var err error
		baseRepo, err = loadAt(ectx, g, blobs, origin, res.Base.Commit, tmp+"/base")
		return err
	})
	eg.Go(func() error {
		var err error
		if res.Head.Commit == "" {
			headRepo, err = repo.Load(top)
		} else {
			headRepo, err = loadAt(ectx, g, blobs, origin, res.Head.Commit, tmp+"/head")
		}
		return err
	})
	err = eg.Wait()
	if cerr := blobs.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	base, err := renderRepo(ctx, baseRepo, o.Parallel, nil)
	if err != nil {
		return nil, err
	}
	var same *reuse
	if res.Head.Commit != "" && !o.renderBoth { // the working tree may hold ignored files git does not list as changed
		same = &reuse{base: base, changed: changed}
	}
	head, err := renderRepo(ctx, headRepo, o.Parallel, same)
	if err != nil {
		return nil, err
	}
	log.Debug("rendered", "base", len(base.Apps), "head", len(head.Apps), "reused", head.reused, "changedFiles", len(changed))
	cmp, err := Compare(base, head, changed)
	if err != nil {
		return nil, err
	}
	cmp.Base, cmp.Head = res.Base, res.Head
	return cmp, nil
}

// loadAt loads commit from git objects written into dir in two
// steps: first the files the repository loader reads (YAML and JSON, not
// under testdata/ or dot folders, as repo.Load skips them), as the loader
// needs them (documents it would drop left blank, see loaderView); then,
// once it has loaded them, those files as they are and every file under
// the Applications' source folders and kustomization folders (chart
// templates, helpers, generator inputs). The rest of the tree (code, docs)
// is never written.
func loadAt(ctx context.Context, g gitRepo, blobs *blobStore, origin func() string, commit, dir string) (*repo.Repo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files, err := g.tree(ctx, commit)
	if err != nil {
		return nil, err
	}
	var manifests, rest []treeEntry
	for _, f := range files {
		if loaderReads(f.path) {
			manifests = append(manifests, f)
		} else {
			rest = append(rest, f)
		}
	}
	full := map[treeEntry][]byte{} // files written as the loader's view
	err = blobs.read(manifests, func(f treeEntry, data []byte) error {
		view, changed := loaderView(f.path, data)
		if changed {
			full[f] = data
		}
		return writeTo(dir, f, view)
	})
	if err != nil {
		return nil, err
	}
	r, err := repo.Load(dir)
	if err != nil {
		return nil, err
	}
	if r.URL == "" {
		if r.URL = origin(); r.URL != "" {
			r.URLSource = "origin remote"
		}
	}
	// A kustomization may name any file as a resource: every file goes
	// back to what the commit holds before anything renders.
	for f, data := range full {
		if err := writeTo(dir, f, data); err != nil {
			return nil, err
		}
	}
	dirs := sourceDirs(r, manifests)
	var needed []treeEntry
	for _, f := range rest {
		if under(f.path, dirs) {
			needed = append(needed, f)
		}
	}
	if err := blobs.read(needed, func(f treeEntry, data []byte) error { return writeTo(dir, f, data) }); err != nil {
		return nil, err
	}
	return r, nil
}

// loaderReads mirrors what repo.Load reads: .yaml/.yml files outside
// testdata/ and dot folders (plus .json, which directory sources read).
func loaderReads(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".yaml", ".yml", ".json":
	default:
		return false
	}
	segs := strings.Split(p, "/")
	for _, s := range segs[:len(segs)-1] {
		if s == "testdata" || s == "node_modules" || strings.HasPrefix(s, ".") {
			return false
		}
	}
	return true
}

// sourceDirs are the repo-relative folders whose every file a render may
// read: the local sources of every Application, and every kustomization
// folder (a kustomization's bases live outside its own folder).
func sourceDirs(r *repo.Repo, manifests []treeEntry) []string {
	var dirs []string
	for _, a := range r.Applications {
		for _, src := range a.Spec.GetSources() {
			if apptree.IsLocal(r, src) && src.Path != "" {
				dirs = append(dirs, path.Clean(strings.TrimPrefix(filepath.ToSlash(src.Path), "/")))
			}
		}
	}
	for _, f := range manifests {
		switch path.Base(f.path) {
		case "kustomization.yaml", "kustomization.yml", "Kustomization":
			dirs = append(dirs, path.Dir(f.path))
		}
	}
	return uniqueSorted(dirs)
}

func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if d == "." || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
