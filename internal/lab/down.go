package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tug-gitops/tug/internal/supervisor"
)

// DownResult says what Down found and what it stopped.
type DownResult struct {
	// Was is the lab's state when Down began: "building" (its programs),
	// "starting", "running", "failed", "stopping", "half-dead" (its
	// supervisor gone, components or a build left running) or "stopped"
	// (nothing ran).
	Was string
	// Supervisor is the pid of the supervisor Down stopped (0: none ran).
	Supervisor int
	// Killed is true when the supervisor had to be killed (SIGKILL).
	Killed bool
	// Leftovers names what Down stopped itself, by recorded pid and start
	// time, because no supervisor did.
	Leftovers []string
}

// Down stops the lab whose state is in dir, in whatever phase it is: it
// asks the supervisor holding the state's lock to stop (SIGTERM), kills it
// if it has not let go of the lock before ctx's deadline nears, then stops
// whatever the status file records that still runs (a build, components)
// — all by pid and start time, never a pid alone.
func Down(ctx context.Context, dir string) (*DownResult, error) {
	layout := Layout{Dir: dir}
	st, stErr := ReadStatus(dir)
	holder, held, err := lockHolder(ctx, layout)
	if err != nil {
		return nil, err
	}
	if !held && stErr != nil {
		return nil, stErr
	}
	res := &DownResult{Was: PhaseStopped}
	if held && holder.PID == 0 && st != nil {
		holder = unrecordedHolder(st)
	}
	if held {
		res.Was, res.Supervisor = phaseOf(st, holder), holder.PID
		res.Killed = stopSupervisor(ctx, layout, holder)
		if fresh, err := ReadStatus(dir); err == nil {
			st = fresh // its last word, with anything it started since
		}
	}
	if st == nil {
		return res, nil
	}
	recs := recorded(st)
	var live []string
	var procs []supervisor.Proc
	for _, r := range recs {
		procs = append(procs, r.proc)
		if r.proc.Alive() {
			live = append(live, fmt.Sprintf("%s (pid %d)", r.name, r.proc.PID))
		}
	}
	if !held && len(live) > 0 {
		res.Was = "half-dead"
	}
	left := supervisor.StopAll(ctx, procs, 10*time.Second)
	res.Leftovers = live
	if len(left) > 0 {
		return res, fmt.Errorf("could not stop %v", left)
	}
	// A real node's host changes, if its supervisor could not revert them.
	if err := undoNode(ctx, dir); err != nil {
		return res, fmt.Errorf("revert the real node's host changes (listed in %s/node/ledger.jsonl): %w", dir, err)
	}
	if st.Phase != PhaseStopped {
		st.Phase = PhaseStopped
		st.Build = nil
		_ = writeStatus(dir, st)
	}
	return res, nil
}

// lockHolder returns the supervisor holding the state's lock. A supervisor
// writes itself into the lock a moment after taking it: wait for that.
func lockHolder(ctx context.Context, layout Layout) (supervisor.Proc, bool, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		holder, held, err := supervisor.LockHolder(layout.Lock())
		if err != nil || !held || holder.PID != 0 || time.Now().After(deadline) {
			return holder, held, err
		}
		select {
		case <-ctx.Done():
			return holder, held, nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// unrecordedHolder finds a supervisor that holds the lock without having
// written itself into it (one started by an earlier tug): the status
// file's supervisor pid, if that process is a lab supervisor.
func unrecordedHolder(st *Status) supervisor.Proc {
	if st.Supervisor <= 0 || !strings.Contains(supervisor.Cmdline(st.Supervisor), "lab supervise") {
		return supervisor.Proc{}
	}
	p, _ := supervisor.Identify(st.Supervisor)
	return p
}

// phaseOf says what a live supervisor is doing, in Down's words.
func phaseOf(st *Status, holder supervisor.Proc) string {
	if st == nil || st.Supervisor != holder.PID {
		return PhaseStarting // it has not written its status yet
	}
	if st.Phase == PhaseReady {
		return "running"
	}
	return st.Phase
}

// stopSupervisor asks the supervisor to stop and waits until it has let go
// of the lock; it kills it when that has not happened as ctx's deadline
// nears, and reports whether it had to.
func stopSupervisor(ctx context.Context, layout Layout, holder supervisor.Proc) (killed bool) {
	if holder.PID == 0 {
		return false // it exited between the probe and now
	}
	_ = holder.Signal(syscall.SIGTERM)
	// The supervisor stops its components within stopTimeout; keep a
	// quarter of what is left for the kill and the leftovers after it.
	wait := stopTimeout + 5*time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d)*3/4)
	}
	if waitUntil(ctx, wait, func() bool {
		_, held, _ := supervisor.LockHolder(layout.Lock())
		return !held || !holder.Alive()
	}) {
		return false
	}
	_ = holder.Signal(syscall.SIGKILL)
	waitUntil(ctx, 5*time.Second, func() bool { return !holder.Alive() })
	return true
}

// waitUntil polls cond until it holds (true), timeout passes or ctx ends.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

type record struct {
	name string
	proc supervisor.Proc
}

// recorded lists the processes a status file records: the build and every
// component. A record from before start times were kept counts only if
// the process's command line or environment names the lab's state folder.
func recorded(st *Status) []record {
	var out []record
	if b := st.Build; b != nil {
		out = append(out, record{"build of " + b.Tool, b.Proc})
	}
	// The API server before its storage: stopping kine first makes the
	// API server hang on shutdown until killed.
	for _, first := range []bool{true, false} {
		for _, c := range st.Components {
			if (c.Name == "kube-apiserver") != first {
				continue
			}
			p := c.Proc()
			if p.Start == 0 && sameLab(c.PID, st.StateDir) {
				p, _ = supervisor.Identify(c.PID)
			}
			out = append(out, record{c.Name, p})
		}
	}
	return out
}

// stopRecorded stops what a previous supervisor's status records and
// still runs (it was killed, or crashed).
func stopRecorded(ctx context.Context, st *Status, log *slog.Logger) {
	var procs []supervisor.Proc
	for _, r := range recorded(st) {
		if r.proc.Alive() {
			log.Warn("stopping what a previous supervisor left running", "what", r.name, "pid", r.proc.PID)
			procs = append(procs, r.proc)
		}
	}
	if len(procs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if left := supervisor.StopAll(ctx, procs, 10*time.Second); len(left) > 0 {
		log.Error("could not stop what a previous supervisor left running", "left", left)
	}
}

// ProbeStatus reads the lab's status and checks now that its supervisor
// holds the state's lock, that each component's very process is alive
// (pid and start time) and that its ports answer, and measures each one's
// memory.
func ProbeStatus(ctx context.Context, dir string) (*Status, error) {
	st, err := ReadStatus(dir)
	if err != nil {
		return nil, err
	}
	holder, held, _ := supervisor.LockHolder(Layout{Dir: dir}.Lock())
	switch {
	case !held && st.Phase != PhaseStopped:
		st.Phase = "not running (supervisor gone)"
	case held && holder.PID != 0 && holder.PID != st.Supervisor:
		st.Phase = PhaseStarting
	}
	if held && holder.PID != 0 {
		st.RSS = supervisor.RSS(holder.PID)
	}
	st.TotalRSS = st.RSS
	for i := range st.Components {
		c := &st.Components[i]
		alive := c.Proc().Alive()
		c.Healthy = alive && c.Error == "" && portsAnswer(ctx, c.Ports)
		c.RSS = 0
		if alive {
			c.RSS = supervisor.GroupRSS(c.PID)
		}
		st.TotalRSS += c.RSS
	}
	return st, nil
}

// RemoveUserContext removes the lab's context from the user's kubeconfig:
// the file `up` added it to (recorded in the state folder dir), and the
// file $KUBECONFIG names now. When both are one file, the second removal
// finds nothing to remove and writes nothing.
func RemoveUserContext(dir, name string) error {
	paths := []string{UserKubeconfigPath()}
	if data, err := os.ReadFile(Layout{Dir: dir}.UserKubeconfigRecord()); err == nil {
		paths = append(paths, strings.TrimSpace(string(data)))
	}
	var errs []error
	for _, p := range paths {
		if p != "" && !within(p, dir) { // the lab's own kubeconfigs are not the user's
			errs = append(errs, removeFromUserKubeconfig(p, ContextName(name)))
		}
	}
	return errors.Join(errs...)
}

// within says whether path is dir or inside it.
func within(path, dir string) bool {
	path, err1 := filepath.Abs(path)
	dir, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func portsAnswer(ctx context.Context, ports map[string]int) bool {
	for _, p := range ports {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := tcpReady(p)(pctx)
		cancel()
		if err != nil {
			return false
		}
	}
	return true
}

// sameLab tells whether a process's command line or environment names the
// lab's state folder (every component's flags or its HOME/TMPDIR do): the
// check for a record that has no start time.
func sameLab(pid int, stateDir string) bool {
	if stateDir == "" || pid <= 0 {
		return false
	}
	for _, f := range []string{"cmdline", "environ"} {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + f)
		if err == nil && strings.Contains(string(data), stateDir) {
			return true
		}
	}
	return false
}

// errNoLab is wrapped by ReadStatus when the state has no status file.
var errNoLab = errors.New("no lab")
