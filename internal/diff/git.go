package diff

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// WorkingTree is the Head that means the files on disk, as they are.
const WorkingTree = ""

// gitRepo runs git in one work tree.
type gitRepo struct{ dir string }

func (g gitRepo) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", g.dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
	}
	return out.String(), nil
}

// topLevel is the root of the work tree holding dir.
func topLevel(ctx context.Context, dir string) (string, error) {
	out, err := gitRepo{dir}.run(ctx, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", fmt.Errorf("%s is not inside a git work tree (tug diff compares git revisions): %w", dir, err)
	}
	return strings.TrimSpace(out), nil
}

// commit resolves a revision to a commit id.
func (g gitRepo) commit(ctx context.Context, rev string) (string, error) {
	if strings.HasPrefix(rev, "-") {
		return "", fmt.Errorf("revision %q: must not start with '-'", rev)
	}
	out, err := g.run(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("unknown revision %q: name a commit, branch or tag (git rev-parse could not resolve it)", rev)
	}
	return strings.TrimSpace(out), nil
}

// defaultBase is the merge base of HEAD with the default branch: the
// remote's HEAD branch when known, else origin/main, origin/master, main or
// master, whichever exists first.
func (g gitRepo) defaultBase(ctx context.Context) (ref, commit string, err error) {
	var candidates []string
	if out, err := g.run(ctx, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"); err == nil {
		candidates = append(candidates, strings.TrimSpace(out))
	}
	candidates = append(candidates, "origin/main", "origin/master", "main", "master")
	for _, c := range candidates {
		if _, err := g.commit(ctx, c); err != nil {
			continue
		}
		out, err := g.run(ctx, "merge-base", c, "HEAD")
		if err != nil {
			return "", "", fmt.Errorf("merge base of %s and HEAD: %w", c, err)
		}
		return "merge-base(" + c + ", HEAD)", strings.TrimSpace(out), nil
	}
	return "", "", errors.New("no default branch found (tried origin/HEAD, origin/main, origin/master, main, master): name the base, e.g. tug diff origin/main")
}

// changedFiles lists repo-relative files that differ between base and head
// (the working tree when head is WorkingTree, untracked files included).
func (g gitRepo) changedFiles(ctx context.Context, base, head string) ([]string, error) {
	args := []string{"diff", "--name-only", "--no-renames", "-z", base}
	if head != WorkingTree {
		args = append(args, head)
	}
	out, err := g.run(ctx, append(args, "--")...)
	if err != nil {
		return nil, err
	}
	files := splitZ(out)
	if head == WorkingTree {
		untracked, err := g.run(ctx, "ls-files", "--others", "--exclude-standard", "-z")
		if err != nil {
			return nil, err
		}
		files = append(files, splitZ(untracked)...)
	}
	return uniqueSorted(files), nil
}

func splitZ(s string) []string {
	var out []string
	for _, f := range strings.Split(s, "\x00") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// extract writes the tree of commit into dst (which must exist) from
// `git archive`: git objects only, so the user's checkout is never touched.
// Only directories and regular files are written; symbolic links are
// skipped (a link could point outside dst).
func (g gitRepo) extract(ctx context.Context, commit, dst string) error {
	cmd := exec.CommandContext(ctx, "git", "-C", g.dir, "archive", "--format=tar", commit)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	terr := untar(out, dst)
	if terr != nil {
		_, _ = io.Copy(io.Discard, out) // let git finish writing before Wait
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git archive %s: %s", commit, strings.TrimSpace(errb.String()))
	}
	return terr
}

func untar(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading git archive: %w", err)
		}
		name := filepath.FromSlash(h.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("git archive: unsafe path %q", h.Name)
		}
		p := filepath.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(p, tr, h.FileInfo().Mode().Perm()); err != nil {
				return err
			}
		}
	}
}

func writeFile(p string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
