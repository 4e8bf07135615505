//go:build unix

package fsutil

import (
	"errors"
	"os"
	"syscall"
)

// tryLockFile takes flock's exclusive lock on f without blocking: ErrLocked
// when another process holds it.
func tryLockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return ErrLocked
	}
	return err
}
