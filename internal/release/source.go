package release

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/tug-gitops/tug/internal/image"
)

// source is the commit a release is built from.
type source struct {
	root   string // the work tree's root
	repo   *git.Repository
	commit plumbing.Hash
}

func openSource(dir, rev string) (*source, error) {
	if dir == "" {
		dir = "."
	}
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("release: %s is not in a git repository (the image is built from a commit): %w", dir, err)
	}
	wt, err := r.Worktree()
	if err != nil {
		return nil, fmt.Errorf("release: %s: %w", dir, err)
	}
	var h *plumbing.Hash
	if rev == "" {
		head, err := r.Head()
		if err != nil {
			return nil, fmt.Errorf("release: %s has no commit to build: %w", dir, err)
		}
		hh := head.Hash()
		h = &hh
	} else if h, err = r.ResolveRevision(plumbing.Revision(rev)); err != nil {
		return nil, fmt.Errorf("release: commit %q: %w", rev, err)
	}
	return &source{root: wt.Filesystem.Root(), repo: r, commit: *h}, nil
}

var semverTag = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]*)?$`)

// defaultTag is the commit's own version tag without a leading "v"
// (v1.2.3 → 1.2.3; of several, the last in sort order), else
// 0.0.0-<12 hex of the commit>, a semver pre-release that sorts below
// every real version.
func (s *source) defaultTag() (tag, from string) {
	var names []string
	tags, err := s.repo.Tags()
	if err == nil {
		_ = tags.ForEach(func(ref *plumbing.Reference) error {
			target := ref.Hash()
			if obj, err := s.repo.TagObject(target); err == nil {
				c, err := obj.Commit()
				if err != nil {
					return nil
				}
				target = c.Hash
			}
			if target == s.commit && semverTag.MatchString(ref.Name().Short()) {
				names = append(names, ref.Name().Short())
			}
			return nil
		})
	}
	if len(names) == 0 {
		return "0.0.0-" + s.commit.String()[:12], "commit (no version tag on it)"
	}
	sort.Strings(names)
	t := names[len(names)-1]
	return strings.TrimPrefix(t, "v"), "git tag " + t
}

// build exports the commit's go.mod, go.sum and apps/ into a scratch
// folder and builds the image there: uncommitted edits never reach an
// image, and without a .git folder no VCS state is stamped into the
// binary, so the same commit and tag give the same digest anywhere.
func (s *source) build(ctx context.Context, app, tag string) (v1.Image, error) {
	tmp, err := os.MkdirTemp("", "tug-release-src-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := s.export(tmp, func(p string) bool {
		return p == "go.mod" || p == "go.sum" || strings.HasPrefix(p, "apps/")
	}); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(tmp, "apps", app)); err != nil {
		return nil, fmt.Errorf("release: commit %s has no apps/%s to build", s.commit.String()[:10], app)
	}
	return image.Build(ctx, image.Spec{RepoRoot: tmp, App: app, Version: tag})
}

func (s *source) export(dst string, want func(string) bool) error {
	c, err := s.repo.CommitObject(s.commit)
	if err != nil {
		return fmt.Errorf("release: commit %s: %w", s.commit, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	return tree.Files().ForEach(func(f *object.File) error {
		if !want(f.Name) || f.Mode == filemode.Symlink || f.Mode == filemode.Submodule {
			return nil
		}
		path := filepath.Join(dst, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if f.Mode == filemode.Executable {
			mode = 0o755
		}
		r, err := f.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, r); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
