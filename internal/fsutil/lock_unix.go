//go:build unix

package fsutil

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes flock's exclusive lock on f; without wait, ErrLocked when
// another process holds it.
func lockFile(f *os.File, wait bool) error {
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	err := syscall.Flock(int(f.Fd()), how)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return ErrLocked
	}
	return err
}
