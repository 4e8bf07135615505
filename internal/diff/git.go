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
	"sync"
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

// blobStore reads blobs through one `git cat-file --batch` process for a
// whole run (both revisions, both passes): git objects only, so the user's
// checkout is never touched, and one process start instead of one per read.
type blobStore struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	errb   bytes.Buffer
	broken error
}

func (g gitRepo) blobStore(ctx context.Context) (*blobStore, error) {
	s := &blobStore{cmd: exec.CommandContext(ctx, "git", "-C", g.dir, "cat-file", "--batch")}
	s.cmd.Stderr = &s.errb
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("git cat-file: %w", err)
	}
	s.out = bufio.NewReaderSize(stdout, 64<<10)
	return s, nil
}

// close ends the git process and reports how it ended.
func (s *blobStore) close() error {
	s.stdin.Close()
	_, _ = io.Copy(io.Discard, s.out)
	if err := s.cmd.Wait(); err != nil && s.broken == nil {
		return fmt.Errorf("git cat-file: %v: %s", err, strings.TrimSpace(s.errb.String()))
	}
	return nil
}

// read calls fn with the content of each file, in order. After an error
// the stream's position is unknown, so every later read fails too.
func (s *blobStore) read(files []treeEntry, fn func(f treeEntry, data []byte) error) error {
	if len(files) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(s.stdin)
		for _, f := range files {
			fmt.Fprintln(w, f.oid)
		}
		werr <- w.Flush()
	}()
	err := s.readAll(files, fn)
	if err != nil {
		// The answers not read would block git, and git the writer:
		// end the process (every later read fails anyway).
		_ = s.cmd.Process.Kill()
	}
	if e := <-werr; err == nil && e != nil {
		err = fmt.Errorf("git cat-file: %w: %s", e, strings.TrimSpace(s.errb.String()))
	}
	if err != nil {
		s.broken = err
	}
	return err
}

func (s *blobStore) readAll(files []treeEntry, fn func(f treeEntry, data []byte) error) error {
	for _, f := range files {
		header, err := s.out.ReadString('\n')
		if err != nil {
			return fmt.Errorf("git cat-file: reading %s: %w", f.path, err)
		}
		var oid, typ string
		var size int64
		if _, err := fmt.Sscanf(header, "%s %s %d", &oid, &typ, &size); err != nil || typ != "blob" {
			return fmt.Errorf("git cat-file: %s: unexpected %q", f.path, strings.TrimSpace(header))
		}
		data := make([]byte, size+1) // and the newline after the content
		if _, err := io.ReadFull(s.out, data); err != nil {
			return fmt.Errorf("git cat-file: reading %s: %w", f.path, err)
		}
		if err := fn(f, data[:size]); err != nil {
			return err
		}
	}
	return nil
}

// writeTo writes one file of a tree under dst.
func writeTo(dst string, f treeEntry, data []byte) error {
	name := filepath.FromSlash(f.path)
	if !filepath.IsLocal(name) {
		return fmt.Errorf("git tree: unsafe path %q", f.path)
	}
	mode := os.FileMode(0o644)
	if f.mode == "100755" {
		mode = 0o755
	}
	p := filepath.Join(dst, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, mode)
}
