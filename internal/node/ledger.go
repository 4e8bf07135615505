package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Kinds of host change the ledger records.
const (
	KindPath      = "path"      // a path outside the state folder that did not exist
	KindCgroup    = "cgroup"    // a cgroup folder (absolute path under /sys/fs/cgroup)
	KindSysctl    = "sysctl"    // a sysctl and its value before
	KindNftTable  = "nft-table" // an nftables table ("inet tug-x") that did not exist
	KindLink      = "link"      // a network link that did not exist
	KindMounts    = "mounts"    // mounts under a folder (the node's state)
	KindProcesses = "processes" // processes naming a folder, and those in the node's cgroups
)

// Change is one ledger entry.
type Change struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Old is a sysctl's value before the change.
	Old string `json:"old,omitempty"`
	// Cgroups lists the cgroup folders whose processes a KindProcesses
	// entry also stops (container processes do not name the state folder).
	Cgroups []string `json:"cgroups,omitempty"`
}

// Ledger is the list of host changes, in the order they were made, kept in
// a file as JSON lines. Each entry is written and synced before the change
// it describes, so a supervisor killed at any point leaves a ledger that
// covers everything it did.
type Ledger struct {
	path    string
	changes []Change
}

// OpenLedger reads the ledger at path, or starts an empty one.
func OpenLedger(path string) (*Ledger, error) {
	l := &Ledger{path: path}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var c Change
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			// A line cut short by a crash mid-write: the change it
			// announced was not made yet.
			continue
		}
		l.changes = append(l.changes, c)
	}
	return l, sc.Err()
}

// Changes returns the recorded changes, oldest first.
func (l *Ledger) Changes() []Change { return append([]Change(nil), l.changes...) }

// Record appends c and syncs it to disk; call it before making the change.
// A change already recorded is not recorded twice.
func (l *Ledger) Record(c Change) error {
	for _, have := range l.changes {
		if have.Kind == c.Kind && have.Name == c.Name {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return err
	}
	line, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	l.changes = append(l.changes, c)
	return nil
}

// RecordPath records the topmost missing folder on the way to p (nothing
// if p exists), so Undo removes exactly what did not exist before.
func (l *Ledger) RecordPath(p string) error {
	top := ""
	for d := filepath.Clean(p); d != "/" && d != "."; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		top = d
	}
	if top == "" {
		return nil
	}
	return l.Record(Change{Kind: KindPath, Name: top})
}

// RecordSysctl records key's current value.
func (l *Ledger) RecordSysctl(key string) error {
	v, err := readSysctl(key)
	if err != nil {
		return nil // not on this kernel: nothing can change it
	}
	return l.Record(Change{Kind: KindSysctl, Name: key, Old: v})
}

// Undo reverts every recorded change, the last first, and removes the
// ledger once all are reverted. It goes on after a failure and returns
// every failure; the ledger then keeps what is left, for another try.
func (l *Ledger) Undo(ctx context.Context, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	var left []Change
	for i := len(l.changes) - 1; i >= 0; i-- {
		c := l.changes[i]
		if err := undo(ctx, c); err != nil {
			log.Warn("could not undo a host change", "kind", c.Kind, "name", c.Name, "err", err)
			errs = append(errs, fmt.Errorf("%s %s: %w", c.Kind, c.Name, err))
			left = append([]Change{c}, left...)
			continue
		}
		log.Debug("host change undone", "kind", c.Kind, "name", c.Name)
	}
	l.changes = left
	if len(left) == 0 {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	} else if err := l.rewrite(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (l *Ledger) rewrite() error {
	var b strings.Builder
	for _, c := range l.changes {
		line, _ := json.Marshal(c)
		b.Write(line)
		b.WriteByte('\n')
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.path)
}

func undo(ctx context.Context, c Change) error {
	switch c.Kind {
	case KindProcesses:
		return stopProcesses(ctx, c.Name, c.Cgroups)
	case KindMounts:
		return unmountUnder(c.Name)
	case KindLink:
		if !linkExists(c.Name) {
			return nil
		}
		return run(ctx, "ip", "link", "delete", c.Name)
	case KindNftTable:
		family, name, ok := strings.Cut(c.Name, " ")
		if !ok {
			return fmt.Errorf("bad table %q", c.Name)
		}
		if run(ctx, "nft", "list", "table", family, name) != nil {
			return nil // gone already
		}
		return run(ctx, "nft", "delete", "table", family, name)
	case KindSysctl:
		return writeSysctl(c.Name, c.Old)
	case KindCgroup:
		return removeCgroup(c.Name)
	case KindPath:
		return os.RemoveAll(c.Name)
	}
	return fmt.Errorf("unknown kind %q", c.Kind)
}

func sysctlPath(key string) string {
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(key, v string) error {
	if cur, err := readSysctl(key); err == nil && cur == v {
		return nil
	}
	return os.WriteFile(sysctlPath(key), []byte(v+"\n"), 0o644)
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// removeCgroup removes dir and the folders below it, deepest first (a
// cgroup folder is removed with rmdir; its files are the kernel's).
func removeCgroup(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var last error
	for _, d := range dirs {
		// A cgroup whose last process just exited can be busy for a moment.
		for try := 0; ; try++ {
			err := syscall.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if try == 50 {
				last = fmt.Errorf("rmdir %s: %w", d, err)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return last
}

// unmountUnder unmounts every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	dir = filepath.Clean(dir)
	for round := 0; round < 5; round++ {
		mounts, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		for _, m := range mounts {
			detachMount(m)
		}
	}
	left, _ := mountsUnder(dir)
	if len(left) > 0 {
		return fmt.Errorf("still mounted: %v", left)
	}
	return nil
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out, nil
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// stopProcesses stops every process whose command line or environment
// names dir (containerd, its shims, the kubelet…) and every process in
// the cgroups (the containers): SIGTERM, then SIGKILL after 5 s.
func stopProcesses(ctx context.Context, dir string, cgroups []string) error {
	find := func() []int {
		pids := map[int]bool{}
		for _, p := range processesNaming(dir) {
			pids[p] = true
		}
		for _, cg := range cgroups {
			for _, p := range cgroupProcs(cg) {
				pids[p] = true
			}
		}
		delete(pids, os.Getpid())
		var out []int
		for p := range pids {
			out = append(out, p)
		}
		return out
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		pids := find()
		if len(pids) == 0 {
			return nil
		}
		for _, p := range pids {
			_ = syscall.Kill(p, sig)
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && len(find()) > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if left := find(); len(left) > 0 {
		return fmt.Errorf("processes %v would not stop", left)
	}
	return nil
}

// processesNaming lists pids whose command line or environment holds dir.
func processesNaming(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile("/proc/" + e.Name() + "/" + f)
			if err == nil && strings.Contains(string(b), dir) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// cgroupProcs lists the processes in dir and every cgroup below it.
func cgroupProcs(dir string) []int {
	var out []int
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return nil
	})
	return out
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
