package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"
)

// Proc identifies one process for as long as it lives: its pid and its
// start time. A pid alone names whatever process the kernel last gave that
// number to, which after a crash and a reboot or a busy hour is someone
// else's; the pair never names two processes.
type Proc struct {
	PID int `json:"pid"`
	// Start is the process's start time as the kernel reports it (on
	// Linux, clock ticks since boot: field 22 of /proc/<pid>/stat).
	Start uint64 `json:"startTime"`
}

func (p Proc) String() string { return "pid " + strconv.Itoa(p.PID) }

// Identify returns the identity of the process running now as pid.
func Identify(pid int) (Proc, error) {
	if pid <= 0 {
		return Proc{}, fmt.Errorf("no process %d", pid)
	}
	st, err := readStat(pid)
	if err != nil {
		return Proc{}, err
	}
	return Proc{PID: pid, Start: st.start}, nil
}

// Self is the calling process's identity.
func Self() Proc {
	p, _ := Identify(syscall.Getpid())
	return p
}

// Alive reports whether the very process p names still runs: same pid,
// same start time, and not a zombie (exited, waiting to be reaped).
func (p Proc) Alive() bool {
	if p.PID <= 0 || p.Start == 0 {
		return false
	}
	st, err := readStat(p.PID)
	return err == nil && st.start == p.Start && st.state != 'Z' && st.state != 'X'
}

// Signal sends sig to p if p is still the process it names.
func (p Proc) Signal(sig syscall.Signal) error {
	if !p.Alive() {
		return errGone
	}
	return syscall.Kill(p.PID, sig)
}

var errGone = errors.New("process gone")

// signalGroup sends sig to the process group p leads, and to the members of
// that group when p has exited before them. It never signals a group that
// p's pid now leads for someone else: Linux does not hand out a pid while
// a process group of that number has members, so a live process with p's
// pid and another start time means p's group is gone entirely.
func signalGroup(p Proc, sig syscall.Signal) {
	if p.PID <= 0 {
		return
	}
	st, err := readStat(p.PID)
	switch {
	case err == nil && st.start == p.Start:
		_ = syscall.Kill(-p.PID, sig)
	case err == nil:
		return // recycled
	default:
		for _, m := range groupMembers(p.PID) {
			_ = syscall.Kill(m, sig)
		}
	}
}

// groupAlive reports whether p or any member of its process group runs.
func groupAlive(p Proc) bool {
	if p.PID <= 0 {
		return false
	}
	if p.Alive() {
		return true
	}
	if st, err := readStat(p.PID); err == nil && st.start != p.Start {
		return false // recycled: p's group is gone (see signalGroup)
	}
	return len(groupMembers(p.PID)) > 0
}

// StopAll stops processes recorded earlier, perhaps by another process
// that has died since (a supervisor killed with SIGKILL leaves its children
// running): each one's process group gets SIGTERM, then SIGKILL after
// grace, all at once. A record whose process is gone or whose pid now
// belongs to another process (another start time) is skipped. It returns
// the processes still running when ctx ends.
func StopAll(ctx context.Context, procs []Proc, grace time.Duration) []Proc {
	var live []Proc
	for _, p := range procs {
		if groupAlive(p) {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return nil
	}
	for _, p := range live {
		signalGroup(p, syscall.SIGTERM)
	}
	forced := false
	deadline := time.NewTimer(forceAfter(ctx, grace))
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var left []Proc
		for _, p := range live {
			if groupAlive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return nil
		}
		live = left
		select {
		case <-ctx.Done():
			for _, p := range live {
				signalGroup(p, syscall.SIGKILL)
			}
			return live
		case <-deadline.C:
			if !forced {
				forced = true
				for _, p := range live {
					signalGroup(p, syscall.SIGKILL)
				}
			}
		case <-tick.C:
		}
	}
}

// forceAfter is how long to wait after SIGTERM before SIGKILL: grace, but
// never so long that the kill would come after ctx's deadline. Half of the
// time left is kept for the kill to take effect.
func forceAfter(ctx context.Context, grace time.Duration) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(d)/2)
	}
	return max(grace, 0)
}

// GroupRSS is the resident memory of every process in the group pgid
// leads (a component and the programs it runs), in bytes.
func GroupRSS(pgid int) int64 {
	var total int64
	for _, pid := range groupMembers(pgid) {
		total += RSS(pid)
	}
	return total
}
