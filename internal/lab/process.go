package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Restart policy: a component that exits while the lab is up is restarted
// after a backoff that starts at 500 ms and doubles up to 10 s. One that
// fails maxRestarts times within restartWindow is given up on and reported
// as failed (by `tug lab status` and in the supervisor log), so a broken
// configuration does not spin forever.
const (
	maxRestarts   = 5
	restartWindow = 2 * time.Minute
)

// component is one program the lab runs.
type component struct {
	Name   string
	Binary string
	Args   []string
	Env    []string
	Dir    string
	// Ports the component listens on, by purpose ("https", "metrics"…).
	Ports map[string]int
	// Ready reports nil once the component serves.
	Ready func(ctx context.Context) error
}

// process supervises one component.
type process struct {
	c       component
	logPath string
	log     *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	pid      int
	restarts int
	failed   error
	started  time.Time
	stopping bool
	exited   chan struct{} // closed when the current run ends
	history  []time.Time   // recent unexpected exits
}

func newProcess(c component, logDir string, log *slog.Logger) *process {
	return &process{c: c, logPath: filepath.Join(logDir, c.Name+".log"), log: log.With("component", c.Name)}
}

// start runs the component and supervises it until stop is called.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spawnLocked()
}

func (p *process) spawnLocked() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.c.Binary, p.c.Args...)
	cmd.Env = p.c.Env
	cmd.Dir = p.c.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// A process group of its own: stopping the lab stops the component's
	// children too (the repo-server runs git and helm).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.c.Name, err)
	}
	p.cmd, p.pid, p.started = cmd, cmd.Process.Pid, time.Now()
	p.exited = make(chan struct{})
	p.log.Debug("started", "pid", p.pid)
	go p.wait(cmd, logf, p.exited)
	return nil
}

func (p *process) wait(cmd *exec.Cmd, logf *os.File, exited chan struct{}) {
	err := cmd.Wait()
	logf.Close()
	close(exited)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping || p.cmd != cmd {
		return
	}
	now := time.Now()
	p.history = append(p.history, now)
	for len(p.history) > 0 && now.Sub(p.history[0]) > restartWindow {
		p.history = p.history[1:]
	}
	if len(p.history) > maxRestarts {
		p.failed = fmt.Errorf("%s exited %d times in %s, last: %v; giving up (see %s)", p.c.Name, len(p.history), restartWindow, err, p.logPath)
		p.log.Error("giving up", "err", p.failed)
		return
	}
	backoff := 500 * time.Millisecond << (len(p.history) - 1)
	backoff = min(backoff, 10*time.Second)
	p.log.Warn("exited unexpectedly; restarting", "err", exitText(err), "restart_in", backoff, "log", p.logPath)
	time.AfterFunc(backoff, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.stopping {
			return
		}
		p.restarts++
		if err := p.spawnLocked(); err != nil {
			p.failed = err
			p.log.Error("restart failed", "err", err)
		}
	})
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	// Children that left the group's leader behind still go.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// snapshot returns what status reports for this process.
func (p *process) snapshot() ComponentStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := ComponentStatus{Name: p.c.Name, PID: p.pid, Ports: p.c.Ports, Restarts: p.restarts, Log: p.logPath}
	if p.failed != nil {
		s.Error = p.failed.Error()
	}
	return s
}

// waitReady polls Ready until it succeeds or ctx ends; on failure the error
// carries the component's log tail.
func (p *process) waitReady(ctx context.Context, timeout time.Duration) error {
	if p.c.Ready == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		p.mu.Lock()
		exited, failed := p.exited, p.failed
		p.mu.Unlock()
		if failed != nil {
			return failed
		}
		if last = p.c.Ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v\n--- last lines of %s ---\n%s", p.c.Name, timeout, last, p.logPath, logTail(p.logPath, 25))
		case <-exited:
			// Exited: let the supervisor restart it, keep polling.
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func exitText(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// logTail returns the last n lines of a log file.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(data) > 64<<10 {
		data = data[len(data)-64<<10:]
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
