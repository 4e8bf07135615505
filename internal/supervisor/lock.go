package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Lock is an exclusive lock on a state folder, held by one supervisor for
// its lifetime. The kernel releases it when the holder exits, however it
// exits, so a held lock proves a live holder; the holder's identity is
// written into the file so others can tell who it is and stop it.
type Lock struct {
	f    *os.File
	path string
}

// LockedError says who holds a lock.
type LockedError struct {
	Path   string
	Holder Proc // zero when the holder has not written itself in yet
}

func (e *LockedError) Error() string {
	if e.Holder.PID == 0 {
		return fmt.Sprintf("%s is locked by another process", e.Path)
	}
	return fmt.Sprintf("%s is locked by pid %d", e.Path, e.Holder.PID)
}

// AcquireLock takes the lock at path without waiting, and records the
// caller as its holder. It fails with a *LockedError when another process
// holds it. A process only probing the lock (LockHolder) holds it for a
// moment; AcquireLock retries for a second so such a probe never makes a
// supervisor fail to start.
func AcquireLock(path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Second)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			holder, _ := readHolder(path)
			return nil, &LockedError{Path: path, Holder: holder}
		}
		time.Sleep(50 * time.Millisecond) // the probe lets go within microseconds
	}
	data, _ := json.Marshal(Self())
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(append(data, '\n'), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("record the lock's holder in %s: %w", path, err)
	}
	return &Lock{f: f, path: path}, nil
}

// Release lets the lock go.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	l.f.Close()
	l.f = nil
}

// LockHolder reports the live process holding the lock at path, if any.
// held is true whenever the lock is held, even before the holder has
// written itself in (the holder is then zero).
func LockHolder(path string) (holder Proc, held bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return Proc{}, false, nil
	}
	if err != nil {
		return Proc{}, false, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		return Proc{}, false, nil // nobody holds it (closing f lets go)
	} else if !errors.Is(err, syscall.EWOULDBLOCK) {
		return Proc{}, false, fmt.Errorf("probe lock %s: %w", path, err)
	}
	holder, _ = readHolder(path)
	if !holder.Alive() {
		holder = Proc{}
	}
	return holder, true, nil
}

func readHolder(path string) (Proc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Proc{}, err
	}
	var p Proc
	if len(data) == 0 {
		return p, nil
	}
	return p, json.Unmarshal(data, &p)
}
