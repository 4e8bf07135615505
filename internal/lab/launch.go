package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
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

// Launch starts the lab's supervisor in a session of its own — the lab
// outlives the command and the terminal that started it, like kind's
// containers — and follows its log until the lab is ready or failed. A lab
// already starting is followed instead; one already ready is returned with
// ErrAlreadyRunning.
func Launch(ctx context.Context, o LaunchOptions) (*Status, error) {
	dir, err := StateDir(o.StateRoot, o.Name)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "logs", "supervisor.log")
	if st, err := ReadStatus(dir); err == nil && alive(st.Supervisor) {
		switch st.Phase {
		case "ready":
			return st, ErrAlreadyRunning
		case "starting":
			fmt.Fprintf(o.Progress, "lab %q is starting already (supervisor pid %d); following it\n", o.Name, st.Supervisor)
			return follow(ctx, dir, logPath, st.Supervisor, o.Timeout, o.Progress)
		default:
			return nil, fmt.Errorf("lab %q is %s (supervisor pid %d): run 'tug lab down --name %s' first", o.Name, st.Phase, st.Supervisor, o.Name)
		}
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, err
	}
	// status.json stays: the new supervisor reads it to stop anything a
	// crashed one left running, then replaces it.
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
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
	go func() { _ = sup.Wait() }()
	fmt.Fprintf(o.Progress, "Starting lab %q (state %s, log %s)\n", o.Name, dir, logPath)
	return follow(ctx, dir, logPath, sup.Process.Pid, o.Timeout, o.Progress)
}

// follow streams the supervisor's log as progress until the lab it runs
// (pid) reports ready or failed.
func follow(ctx context.Context, dir, logPath string, pid int, timeout time.Duration, progress io.Writer) (*Status, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logf, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	reader := bufio.NewReader(logf)
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
		if st, err := ReadStatus(dir); err == nil && st.Supervisor == pid {
			switch st.Phase {
			case "ready":
				return st, nil
			case "failed", "stopped":
				return nil, fmt.Errorf("lab failed to start: %s\n(see %s and the component logs in %s/logs)", st.Error, logPath, dir)
			}
		}
		if !alive(pid) {
			return nil, fmt.Errorf("the lab supervisor exited; see %s", logPath)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lab not ready after %s; it keeps starting in the background (tug lab status, tug lab down)", timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
