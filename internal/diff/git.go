package diff

import (
	"bufio"
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

// treeEntry is one file of a commit's tree.
type treeEntry struct{ mode, oid, path string }

// tree lists the regular files of commit (symbolic links and submodules
// left out: a link could point outside the directory it is written to).
func (g gitRepo) tree(ctx context.Context, commit string) ([]treeEntry, error) {
	out, err := g.run(ctx, "ls-tree", "-r", "-z", "--full-tree", commit)
	if err != nil {
		return nil, err
	}
	var files []treeEntry
	for _, rec := range splitZ(out) {
		meta, path, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 || f[1] != "blob" || (f[0] != "100644" && f[0] != "100755") {
			continue
		}
		files = append(files, treeEntry{mode: f[0], oid: f[2], path: path})
	}
	return files, nil
}

// writeBlobs writes files into dst from git's object store with one
// `git cat-file --batch`: git objects only, so the user's checkout is never
// touched, and only the files asked for are written.
func (g gitRepo) writeBlobs(ctx context.Context, files []treeEntry, dst string) error {
	if len(files) == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, "git", "-C", g.dir, "cat-file", "--batch")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		w := bufio.NewWriter(stdin)
		for _, f := range files {
			fmt.Fprintln(w, f.oid)
		}
		w.Flush()
		stdin.Close()
	}()
	rerr := readBlobs(bufio.NewReader(stdout), files, dst)
	if rerr != nil {
		_, _ = io.Copy(io.Discard, stdout)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git cat-file: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	return rerr
}

func readBlobs(r *bufio.Reader, files []treeEntry, dst string) error {
	for _, f := range files {
		header, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("git cat-file: reading %s: %w", f.path, err)
		}
		var oid, typ string
		var size int64
		if _, err := fmt.Sscanf(header, "%s %s %d", &oid, &typ, &size); err != nil || typ != "blob" {
			return fmt.Errorf("git cat-file: %s: unexpected %q", f.path, strings.TrimSpace(header))
		}
		name := filepath.FromSlash(f.path)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("git tree: unsafe path %q", f.path)
		}
		mode := os.FileMode(0o644)
		if f.mode == "100755" {
			mode = 0o755
		}
		if err := writeFile(filepath.Join(dst, name), io.LimitReader(r, size), mode); err != nil {
			return err
		}
		if _, err := r.Discard(1); err != nil { // the newline after the content
			return err
		}
	}
	return nil
}

func writeFile(p string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
