// Package fsutil holds the two file operations several packages need done
// carefully: writing a file so a crash never leaves half of it, and copying
// a working tree without its .git.
package fsutil

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// WriteFileAtomic writes data to path through a temporary file in the same
// folder and a rename, so readers see the old content or the new, never a
// part; the mode is set before any byte is written (keys, tokens).
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// CopyTree copies the regular files and folders under src into dst,
// skipping .git folders and anything that is not a regular file (symlinks
// are not followed, so a link cannot pull files from outside src).
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case !d.Type().IsRegular():
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// ErrLocked is returned by Lock with wait false when another process holds
// the lock.
var ErrLocked = errors.New("locked by another process")

// Lock takes an exclusive advisory lock (flock) on the file at path,
// creating it (mode 0600) and its folder if needed. With wait it waits until
// the lock is free or ctx ends (it polls: a blocking flock cannot be
// interrupted, and a process waiting on one would ignore being asked to
// stop); without, it returns ErrLocked at once. The lock lasts until unlock
// is called or the process exits.
func Lock(ctx context.Context, path string, wait bool) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !wait {
			f.Close()
			return nil, ErrLocked
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock %s (held by another process): %w", path, context.Cause(ctx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
