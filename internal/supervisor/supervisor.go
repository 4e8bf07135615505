// Package supervisor runs programs as child processes and keeps them
// running: it starts each in a process group of its own, restarts one that
// exits by its restart policy (with a growing backoff, giving up after too
// many exits), stops them all — SIGTERM to each group, SIGKILL after a
// grace period, all at once and never beyond the caller's context — and
// reports their status.
//
// A process is named by its pid and start time (Proc), never by its pid
// alone, so a record written by a supervisor that has died since can be
// acted on safely: StopAll skips a pid the kernel has given to someone
// else. A state folder is owned by the supervisor holding its Lock.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec describes one program to run.
type Spec struct {
	// Name identifies the process within its supervisor.
	Name string
	Path string
	Args []string
	// Env is the whole environment (nil: the supervisor's own).
	Env []string
	Dir string
	// Log receives stdout and stderr, appended; "" discards them.
	Log string
	// Restart says what happens when the program exits on its own.
	Restart Policy
	// Grace is how long Stop waits after SIGTERM before SIGKILL
	// (default 10 s; less when the caller's context ends sooner).
	Grace time.Duration
	// StopAfter names processes that must have exited before this one is
	// sent SIGTERM: a store outlives its clients (an API server stopped
	// after its database hangs on shutdown until killed).
	StopAfter []string
}

// Policy is a restart policy: a process that exits on its own is started
// again after Backoff, doubling up to MaxBackoff, unless it has exited
// more than MaxRestarts times within Window; then it is given up on
// (StateFailed) so a broken configuration does not spin forever.
type Policy struct {
	// Never restarts the process: its exit is final (StateExited).
	Never       bool
	Backoff     time.Duration // default 500 ms
	MaxBackoff  time.Duration // default 10 s
	MaxRestarts int           // default 5
	Window      time.Duration // default 2 min
}

func (p Policy) withDefaults() Policy {
	if p.Backoff <= 0 {
		p.Backoff = 500 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 10 * time.Second
	}
	if p.MaxRestarts <= 0 {
		p.MaxRestarts = 5
	}
	if p.Window <= 0 {
		p.Window = 2 * time.Minute
	}
	return p
}

// State is where a process is in its life.
type State string

// The states a process goes through.
const (
	StateRunning State = "running"
	StateBackoff State = "backoff" // exited; restarting after a delay
	StateFailed  State = "failed"  // exited too often, or could not start
	StateExited  State = "exited"  // exited, Policy.Never
	StateStopped State = "stopped" // stopped by Stop
)

// Status describes one process now.
type Status struct {
	Name string `json:"name"`
	Proc
	State    State  `json:"state"`
	Restarts int    `json:"restarts"`
	Error    string `json:"error,omitempty"`
	Log      string `json:"log,omitempty"`
}

// Options configure a Supervisor.
type Options struct {
	// Log receives starts, exits, restarts and give-ups.
	Log *slog.Logger
	// OnChange is called (without locks held) whenever a process starts,
	// exits or changes state, for a status file to follow.
	OnChange func()
}

// Supervisor runs processes until Stop.
type Supervisor struct {
	opts     Options
	mu       sync.Mutex
	procs    []*Process
	cleanups []cleanup
	stopped  bool
}

type cleanup struct {
	name string
	f    func(context.Context) error
}

// AddCleanup registers f to run when Stop has stopped every process:
// undoing what was set up on the host for them (a mount, a network
// namespace, a route) once nothing uses it. Cleanups run one after
// another, the last added first, each with Stop's context.
func (s *Supervisor) AddCleanup(name string, f func(context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, cleanup{name, f})
}

// New returns a supervisor with no processes.
func New(opts Options) *Supervisor {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Supervisor{opts: opts}
}

// ErrStopped is returned by Start once Stop has begun.
var ErrStopped = errors.New("supervisor stopped")

// Start starts the program spec describes and supervises it.
func (s *Supervisor) Start(spec Spec) (*Process, error) {
	if spec.Name == "" {
		return nil, errors.New("supervisor: a process needs a name")
	}
	if spec.Grace <= 0 {
		spec.Grace = 10 * time.Second
	}
	spec.Restart = spec.Restart.withDefaults()
	p := &Process{spec: spec, sup: s, log: s.opts.Log.With("process", spec.Name), done: make(chan struct{})}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil, ErrStopped
	}
	for _, q := range s.procs {
		if q.spec.Name == spec.Name {
			s.mu.Unlock()
			return nil, fmt.Errorf("supervisor: a process named %q runs already", spec.Name)
		}
	}
	p.mu.Lock()
	err := p.spawnLocked()
	p.mu.Unlock()
	if err == nil {
		s.procs = append(s.procs, p)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.changed()
	return p, nil
}

// Get returns the process called name, or nil.
func (s *Supervisor) Get(name string) *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		if p.spec.Name == name {
			return p
		}
	}
	return nil
}

// Status reports every process, in start order.
func (s *Supervisor) Status() []Status {
	s.mu.Lock()
	procs := append([]*Process(nil), s.procs...)
	s.mu.Unlock()
	out := make([]Status, 0, len(procs))
	for _, p := range procs {
		out = append(out, p.Status())
	}
	return out
}

// Stop stops every process at once, each after those its StopAfter names
// have exited, then runs the cleanups (AddCleanup). It returns when all
// that is done or ctx ends, whichever comes first: a process still running
// when ctx's deadline nears is killed (SIGKILL), and one still running
// when ctx ends is named in the error. No process starts or restarts once
// Stop has begun.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	procs := append([]*Process(nil), s.procs...)
	s.mu.Unlock()
	byName := map[string]*Process{}
	for _, p := range procs {
		byName[p.spec.Name] = p
	}
	var wg sync.WaitGroup
	errs := make([]error, len(procs))
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, name := range p.spec.StopAfter {
				if q := byName[name]; q != nil {
					select {
					case <-q.done:
					case <-ctx.Done():
					}
				}
			}
			errs[i] = p.Stop(ctx)
		}()
	}
	wg.Wait()
	s.mu.Lock()
	cleanups := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		if err := cleanups[i].f(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", cleanups[i].name, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Supervisor) changed() {
	if s.opts.OnChange != nil {
		s.opts.OnChange()
	}
}

func (s *Supervisor) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// Process is one supervised program.
type Process struct {
	spec Spec
	sup  *Supervisor
	log  *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	proc     Proc
	state    State
	restarts int
	err      error
	history  []time.Time // recent exits, for the give-up rule
	timer    *time.Timer // pending restart
	stopping bool
	exited   chan struct{} // closed when the current run ends
	done     chan struct{} // closed when it will not run again
	doneOnce sync.Once
}

// Name is the process's name.
func (p *Process) Name() string { return p.spec.Name }

// Pid is the current run's process id.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc.PID
}

// Status reports the process now.
func (p *Process) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{Name: p.spec.Name, Proc: p.proc, State: p.state, Restarts: p.restarts, Log: p.spec.Log}
	if p.err != nil {
		s.Error = p.err.Error()
	}
	return s
}

// Exited returns a channel closed when the current run ends (the next run,
// after a restart, has a new one).
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Done returns a channel closed once the process will not run again:
// stopped, given up on, or exited under Policy.Never.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is why the process was given up on (nil while it runs or restarts).
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == StateFailed || p.state == StateExited {
		return p.err
	}
	return nil
}

func (p *Process) spawnLocked() error {
	out := io.Discard
	var logf *os.File
	if p.spec.Log != "" {
		f, err := os.OpenFile(p.spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("start %s: %w", p.spec.Name, err)
		}
		logf, out = f, f
	}
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Env, cmd.Dir = p.spec.Env, p.spec.Dir
	cmd.Stdout, cmd.Stderr = out, out
	// A group of its own: stopping the process stops its children (Argo
	// CD's repo-server runs git and helm), and a terminal's Ctrl-C meant
	// for the supervisor's parent does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		if logf != nil {
			logf.Close()
		}
		return fmt.Errorf("start %s: %w", p.spec.Name, err)
	}
	id, err := Identify(cmd.Process.Pid)
	if err != nil {
		id = Proc{PID: cmd.Process.Pid} // exited already: Wait reports it
	}
	p.cmd, p.proc, p.state = cmd, id, StateRunning
	p.exited = make(chan struct{})
	p.log.Debug("started", "pid", id.PID)
	go p.wait(cmd, logf, p.exited)
	return nil
}

func (p *Process) wait(cmd *exec.Cmd, logf *os.File, exited chan struct{}) {
	err := cmd.Wait()
	if logf != nil {
		logf.Close()
	}
	p.mu.Lock()
	// Children left behind by the group's leader go with it.
	signalGroup(p.proc, syscall.SIGKILL)
	close(exited)
	if p.stopping {
		p.state = StateStopped
		p.mu.Unlock()
		p.finish()
		return
	}
	p.onExitLocked(err)
	p.mu.Unlock()
	p.sup.changed()
}

// onExitLocked applies the restart policy to an exit nobody asked for.
func (p *Process) onExitLocked(err error) {
	pol := p.spec.Restart
	if pol.Never {
		p.state, p.err = StateExited, fmt.Errorf("%s exited: %s", p.spec.Name, exitText(err))
		p.log.Info("exited", "err", exitText(err))
		go p.finish()
		return
	}
	now := time.Now()
	p.history = append(p.history, now)
	for len(p.history) > 0 && now.Sub(p.history[0]) > pol.Window {
		p.history = p.history[1:]
	}
	if len(p.history) > pol.MaxRestarts {
		p.state = StateFailed
		p.err = fmt.Errorf("%s exited %d times in %s, last: %s; giving up%s", p.spec.Name, len(p.history), pol.Window, exitText(err), logHint(p.spec.Log))
		p.log.Error("giving up", "err", p.err)
		go p.finish()
		return
	}
	backoff := min(pol.Backoff<<(len(p.history)-1), pol.MaxBackoff)
	p.state = StateBackoff
	p.log.Warn("exited unexpectedly; restarting", "err", exitText(err), "restart_in", backoff, "log", p.spec.Log)
	p.timer = time.AfterFunc(backoff, p.restart)
}

func (p *Process) restart() {
	if p.sup.isStopped() {
		return // Stop handles this process
	}
	p.mu.Lock()
	if p.stopping || p.state != StateBackoff {
		p.mu.Unlock()
		return
	}
	p.restarts++
	if err := p.spawnLocked(); err != nil {
		p.state, p.err = StateFailed, err
		p.log.Error("restart failed", "err", err)
		p.mu.Unlock()
		p.finish()
		p.sup.changed()
		return
	}
	p.mu.Unlock()
	p.sup.changed()
}

func (p *Process) finish() { p.doneOnce.Do(func() { close(p.done) }) }

// Stop stops the process in whatever phase it is: running (SIGTERM to its
// group, SIGKILL after its grace or as ctx's deadline nears), waiting to
// restart (the restart is cancelled), or already exited. It returns once
// the process has exited, or with an error if it still runs when ctx ends.
func (p *Process) Stop(ctx context.Context) error {
	p.mu.Lock()
	p.stopping = true
	if p.timer != nil {
		p.timer.Stop()
	}
	running := p.state == StateRunning
	if !running {
		if p.state == StateBackoff {
			p.state = StateStopped
		}
		p.mu.Unlock()
		p.finish()
		p.sup.changed()
		return nil
	}
	proc, exited := p.proc, p.exited
	p.mu.Unlock()

	signalGroup(proc, syscall.SIGTERM)
	force := time.NewTimer(forceAfter(ctx, p.spec.Grace))
	defer force.Stop()
	select {
	case <-exited:
	case <-force.C:
		p.log.Warn("did not stop on SIGTERM; killing", "grace", p.spec.Grace)
		signalGroup(proc, syscall.SIGKILL)
		select {
		case <-exited:
		case <-ctx.Done():
		}
	case <-ctx.Done():
		signalGroup(proc, syscall.SIGKILL)
	}
	select {
	case <-exited:
		p.sup.changed()
		return nil
	default:
		return fmt.Errorf("%s (pid %d) still running: %w", p.spec.Name, proc.PID, context.Cause(ctx))
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

func logHint(path string) string {
	if path == "" {
		return ""
	}
	return " (see " + path + ")"
}

// LogTail returns the last n lines of a log file, for error messages.
func LogTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	}
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
