package lab

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Down stops the lab whose state is in dir: it asks the supervisor to stop
// (SIGTERM), waits for it, then makes sure no component outlived it.
func Down(ctx context.Context, dir string, timeout time.Duration) error {
	st, err := ReadStatus(dir)
	if err != nil {
		return err
	}
	if alive(st.Supervisor) {
		_ = syscall.Kill(st.Supervisor, syscall.SIGTERM)
		if err := waitGone(ctx, st.Supervisor, timeout); err != nil {
			_ = syscall.Kill(st.Supervisor, syscall.SIGKILL)
		}
	}
	// A supervisor that crashed leaves its children: stop them by process group.
	if left := stopLeftovers(ctx, st, nil); len(left) > 0 {
		return fmt.Errorf("could not stop %v", left)
	}
	// A real node's host changes, if its supervisor could not revert them.
	if err := undoNode(ctx, dir); err != nil {
		return fmt.Errorf("revert the real node's host changes (listed in %s/node/ledger.jsonl): %w", dir, err)
	}
	if fresh, err := ReadStatus(dir); err == nil && fresh.Phase != "stopped" {
		fresh.Phase = "stopped"
		_ = writeStatus(dir, fresh)
	}
	return nil
}

// ProbeStatus reads the lab's status and checks now that each component's
// process is alive and its first port answers.
func ProbeStatus(ctx context.Context, dir string) (*Status, error) {
	st, err := ReadStatus(dir)
	if err != nil {
		return nil, err
	}
	if !alive(st.Supervisor) && st.Phase != "stopped" {
		st.Phase = "not running (supervisor gone)"
	}
	for i := range st.Components {
		c := &st.Components[i]
		c.Healthy = alive(c.PID) && c.Error == "" && portsAnswer(ctx, c.Ports)
	}
	return st, nil
}

// RemoveUserContext removes the lab's context from the user's kubeconfig.
func RemoveUserContext(name string) error {
	return removeFromUserKubeconfig(UserKubeconfigPath(), ContextName(name))
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

// ProcessAlive reports whether pid runs (a zombie does not count).
func ProcessAlive(pid int) bool { return alive(pid) }

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie (exited, not yet reaped by a dead parent) counts as gone.
	return !isZombie(pid)
}

func waitGone(ctx context.Context, pid int, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		if alive(pid) {
			return fmt.Errorf("pid %d still running", pid)
		}
		return nil
	})
}

// stopLeftovers stops every component st lists that still runs, and
// returns those that would not stop.
func stopLeftovers(ctx context.Context, st *Status, log *slog.Logger) []string {
	var left []string
	// The API server before its storage: stopping kine first makes the
	// API server hang on shutdown until killed.
	comps := append([]ComponentStatus(nil), st.Components...)
	sort.SliceStable(comps, func(i, j int) bool { return comps[i].Name == "kube-apiserver" && comps[j].Name == "kine" })
	for _, c := range comps {
		if !alive(c.PID) || !sameLab(c.PID, st.StateDir) {
			continue
		}
		if log != nil {
			log.Warn("stopping a component left running by a previous supervisor", "component", c.Name, "pid", c.PID)
		}
		_ = syscall.Kill(-c.PID, syscall.SIGTERM)
		_ = syscall.Kill(c.PID, syscall.SIGTERM)
		if waitGone(ctx, c.PID, 10*time.Second) != nil {
			_ = syscall.Kill(-c.PID, syscall.SIGKILL)
			_ = syscall.Kill(c.PID, syscall.SIGKILL)
			if waitGone(ctx, c.PID, 5*time.Second) != nil {
				left = append(left, fmt.Sprintf("%s (pid %d)", c.Name, c.PID))
			}
		}
	}
	return left
}

// sameLab guards against a recycled pid: the process's command line or
// environment must name the lab's state folder (every component's flags
// or its HOME/TMPDIR do).
func sameLab(pid int, stateDir string) bool {
	if stateDir == "" {
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
