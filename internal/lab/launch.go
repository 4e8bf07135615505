package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/tug-gitops/tug/internal/fsutil"
	"github.com/tug-gitops/tug/internal/supervisor"
)

// LaunchOptions configure Launch: how `tug lab up` starts a lab in the
// background.
type LaunchOptions struct {
	Name, StateRoot, RepoRoot string
	// SuperviseArgs is the command that runs the supervisor in the
	// foreground, without --name/--state-dir/--repo (tug: [tug lab supervise]).
	SuperviseArgs []string
	// NoKubeconfigUpdate is passed on as --no-kubeconfig-update.
	NoKubeconfigUpdate bool
	// Node is passed on as --node (real or fake), NodeReason as --node-reason.
	Node, NodeReason string
	// Timeout bounds the wait for the lab to be ready.
	Timeout time.Duration
	// Progress receives the supervisor's log lines while it starts.
	Progress io.Writer
}

// ErrAlreadyRunning is returned (with the running lab's status) by Launch
// when the lab was up before it was called.
var ErrAlreadyRunning = errors.New("lab already running")

// InterruptedError is returned by Launch when its context is cancelled
// (Ctrl-C) before the lab is ready. The supervisor keeps running: the
// caller decides whether to stop it (Down) or leave it.
type InterruptedError struct {
	// Supervisor is the pid of the supervisor still starting the lab.
	Supervisor int
	// Started is true when this Launch started it (false: it followed a
	// lab someone else was starting).
	Started bool
	// Phase is the lab's phase when interrupted (building, starting).
	Phase string
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted while the lab was %s (supervisor pid %d)", e.Phase, e.Supervisor)
}

// Launch starts the lab's supervisor in a session of its own — the lab
// outlives the command and the terminal that started it, like kind's
// containers — and follows its log until the lab is ready or failed. A lab
// being built or started already is followed instead (two `lab up` at once
// start one supervisor: the second says so and follows it); one already
// ready is returned with ErrAlreadyRunning.
func Launch(ctx context.Context, o LaunchOptions) (*Status, error) {
	layout, err := LayoutOf(o.StateRoot, o.Name)
	if err != nil {
		return nil, err
	}
	if err := layout.CheckSocketPaths(o.Node); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(layout.Logs(), 0o700); err != nil {
		return nil, err
	}
	// One `lab up` at a time decides, and starts a supervisor: the lock is
	// held until that supervisor holds the state's lock, so a second one
	// then finds it.
	unlock, err := fsutil.Lock(ctx, layout.LaunchLock(), true)
	if err != nil {
		return nil, err
	}
	defer func() { unlock() }()
	if holder, held, err := lockHolder(ctx, layout); err != nil {
		return nil, err
	} else if held {
		st, _ := ReadStatus(layout.Dir)
		switch phase := phaseOf(st, holder); phase {
		case "running":
			return st, ErrAlreadyRunning
		case PhaseBuilding, PhaseStarting:
			fmt.Fprintf(o.Progress, "lab %q is %s already (supervisor pid %d, started by another 'tug lab up'); following it\n", o.Name, phase, holder.PID)
			unlock()
			unlock = func() {}
			return follow(ctx, layout, holder, false, o.Timeout, o.Progress)
		default:
			return nil, fmt.Errorf("lab %q is %s (supervisor pid %d): run 'tug lab down --name %s' first", o.Name, phase, holder.PID, o.Name)
		}
	}
	// No supervisor runs: the last one's log is kept beside the new one
	// (status.json stays too: the new supervisor reads it to stop anything
	// a killed one left running, then replaces it).
	logPath := layout.SupervisorLog()
	if _, err := os.Stat(logPath); err == nil {
		_ = os.Rename(logPath, logPath+".1")
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// A full disk shows here, before a supervisor starts that could not
	// say why it stopped (its log is on the same disk).
	if _, err := fmt.Fprintf(logf, "tug lab up: starting the supervisor at %s\n", time.Now().UTC().Format(time.RFC3339)); err != nil {
		return nil, fmt.Errorf("cannot write to the lab's state folder %s: %w", layout.Dir, err)
	}
	args := append(append([]string(nil), o.SuperviseArgs[1:]...), "--name", o.Name, "--repo", o.RepoRoot)
	if o.StateRoot != "" {
		args = append(args, "--state-dir", o.StateRoot)
	}
	if o.NoKubeconfigUpdate {
		args = append(args, "--no-kubeconfig-update")
	}
	if o.Node != "" {
		args = append(args, "--node", o.Node, "--node-reason", o.NodeReason)
	}
	sup := exec.Command(o.SuperviseArgs[0], args...)
	sup.Stdout, sup.Stderr = logf, logf
	sup.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := sup.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = sup.Wait(); close(exited) }()
	proc, err := supervisor.Identify(sup.Process.Pid)
	if err != nil {
		proc = supervisor.Proc{PID: sup.Process.Pid}
	}
	fmt.Fprintf(o.Progress, "Starting lab %q (state %s, log %s)\n", o.Name, layout.Dir, logPath)
	// Hand the launch lock over once the supervisor holds the state.
	holdCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	for {
		if h, _, _ := supervisor.LockHolder(layout.Lock()); h == proc {
			break
		}
		select {
		case <-exited:
		case <-holdCtx.Done():
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	cancel()
	unlock()
	unlock = func() {}
	return follow(ctx, layout, proc, true, o.Timeout, o.Progress)
}

// follow streams the supervisor's log as progress until the lab it runs
// (sup) reports ready or failed.
func follow(ctx context.Context, layout Layout, sup supervisor.Proc, started bool, timeout time.Duration, progress io.Writer) (*Status, error) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logPath := layout.SupervisorLog()
	logf, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	reader := bufio.NewReader(logf)
	phase := PhaseStarting
	for {
		for {
			line, err := reader.ReadString('\n')
			if strings.HasSuffix(line, "\n") {
				fmt.Fprint(progress, "  ", line)
			} else if line != "" {
				// A partial line: read it again once it is complete.
				_, _ = logf.Seek(-int64(len(line)), io.SeekCurrent)
				reader.Reset(logf)
			}
			if err != nil {
				break
			}
		}
		// Only this supervisor's word counts: status.json may still be a
		// previous run's.
		if st, err := ReadStatus(layout.Dir); err == nil && st.Supervisor == sup.PID && st.SupervisorStart == sup.Start {
			switch st.Phase {
			case PhaseReady:
				return st, nil
			case PhaseFailed, PhaseStopping, PhaseStopped:
				return nil, fmt.Errorf("lab failed to start: %s\n(see %s and the component logs in %s)", st.Error, logPath, layout.Logs())
			default:
				phase = st.Phase
			}
		}
		if !sup.Alive() {
			return nil, fmt.Errorf("the lab supervisor exited; see %s", logPath)
		}
		select {
		case <-tctx.Done():
			if ctx.Err() != nil {
				return nil, &InterruptedError{Supervisor: sup.PID, Started: started, Phase: phase}
			}
			return nil, fmt.Errorf("lab not ready after %s; it keeps starting in the background (tug lab status, tug lab down)", timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
