// Package giteaserver runs a real Gitea as a local child process: the forge
// the lab pushes the GitOps repository to and that `tug promote` opens pull
// requests on. Everything (config, SQLite database, repositories, logs, the
// admin's access token) lives under one state directory, and starting again
// on the same directory reuses the admin user and its token.
package giteaserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tug-gitops/tug/internal/fsutil"
)

// DefaultAdminUser is the admin account created when Options.AdminUser is
// empty ("admin" itself is a name Gitea reserves).
const DefaultAdminUser = "tug-admin"

// startTimeout bounds the wait for /api/v1/version; Gitea is ready in about
// a second here, the margin is for a machine busy compiling.
const startTimeout = 90 * time.Second

// Options configure Start.
type Options struct {
	// Binary is the gitea executable.
	Binary string
	// StateDir holds app.ini, the database, repositories, logs and the token.
	StateDir string
	// Port to listen on at 127.0.0.1; 0 picks a free one.
	Port int
	// AdminUser is the admin account's name (default DefaultAdminUser).
	AdminUser string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// StaticRoot holds Gitea's options/ (locales, licenses, gitignores) and
	// templates/. A binary built from the Go module embeds none of them and
	// refuses to start without the English locale. Empty: the gitea module's
	// source in the Go module cache (see FindStaticRoot).
	StaticRoot string
	// Run starts `gitea web` in place of Start's own child process: the
	// lab passes its supervisor's, so a Gitea that dies is started again
	// like every other component and shows in the lab's status. nil: a
	// child of this process, stopped by Stop and not restarted.
	Run func(Command) (Process, error)
}

// Command is `gitea web` as Start runs it, for Options.Run. It must run
// in a process group of its own, so that stopping it stops its git
// children too.
type Command struct {
	Path string
	Args []string
	// Env is the whole environment.
	Env []string
	Dir string
	// Log is the file its output is appended to.
	Log string
}

// Process is a running `gitea web`.
type Process interface {
	// Pid is the current run's process id.
	Pid() int
	// Exited is closed when the current run ends.
	Exited() <-chan struct{}
	// Stop stops it for good, its process group included, by ctx's
	// deadline.
	Stop(ctx context.Context) error
}

// Server is a running Gitea.
type Server struct {
	opts     Options
	layout   layout
	url      string
	token    string
	proc     Process
	stopOnce sync.Once
	version  string
}

// layout names the files inside the state directory.
type layout struct{ stateDir string }

func (l layout) customDir() string   { return filepath.Join(l.stateDir, "custom") }
func (l layout) configPath() string  { return filepath.Join(l.customDir(), "conf", "app.ini") }
func (l layout) dataDir() string     { return filepath.Join(l.stateDir, "data") }
func (l layout) logDir() string      { return filepath.Join(l.stateDir, "log") }
func (l layout) logFile() string     { return filepath.Join(l.logDir(), "gitea.log") }
func (l layout) consoleLog() string  { return filepath.Join(l.logDir(), "console.log") }
func (l layout) secretsPath() string { return filepath.Join(l.stateDir, "secrets.json") }
func (l layout) tokenPath() string   { return filepath.Join(l.stateDir, "admin-token") }
func (l layout) tokenScopesPath() string {
	return filepath.Join(l.stateDir, "admin-token.scopes")
}
func (l layout) pidPath() string { return filepath.Join(l.stateDir, "gitea.pid") }

// Start configures Gitea under opts.StateDir, makes sure the admin user and
// its token exist, starts `gitea web` and waits until the API answers.
// The process outlives ctx (ctx bounds only the start); call Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Binary == "" || opts.StateDir == "" {
		return nil, errors.New("giteaserver: Options.Binary and Options.StateDir are required")
	}
	if opts.AdminUser == "" {
		opts.AdminUser = DefaultAdminUser
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StaticRoot == "" {
		root, err := FindStaticRoot()
		if err != nil {
			return nil, err
		}
		opts.StaticRoot = root
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, err
	}
	opts.StateDir = stateDir
	l := layout{stateDir}
	if err := refuseIfRunning(l); err != nil {
		return nil, err
	}
	for _, d := range []string{l.stateDir, filepath.Dir(l.configPath()), l.dataDir(), l.logDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("giteaserver: create %s: %w", d, err)
		}
	}
	sec, err := loadOrCreateSecrets(l.secretsPath())
	if err != nil {
		return nil, fmt.Errorf("giteaserver: %w", err)
	}

	// A picked port can be taken by someone else before Gitea binds it;
	// try a few times when we picked it.
	attempts := 1
	if opts.Port == 0 {
		attempts = 3
	}
	for i := 0; ; i++ {
		s, err := startOnce(ctx, opts, l, sec)
		if err == nil {
			return s, nil
		}
		if i+1 >= attempts || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
		opts.Logger.Warn("gitea port was taken, retrying on another", "err", err)
	}
}

func startOnce(ctx context.Context, opts Options, l layout, sec secrets) (*Server, error) {
	port := opts.Port
	if port != 0 {
		// Otherwise whoever holds the port would answer our readiness probe.
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return nil, fmt.Errorf("giteaserver: port %d: %w", port, err)
		}
		ln.Close()
	} else {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	if err := fsutil.WriteFileAtomic(l.configPath(), []byte(appINI(l, port, sec, opts.StaticRoot)), 0o600); err != nil {
		return nil, fmt.Errorf("giteaserver: write app.ini: %w", err)
	}
	s := &Server{opts: opts, layout: l, url: URLForPort(port)}
	if err := s.ensureAdmin(ctx); err != nil {
		return nil, err
	}
	began := time.Now()
	if err := s.startWeb(); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop(context.Background())
		return nil, err
	}
	opts.Logger.Info("gitea ready", "url", s.url, "pid", s.Pid(), "version", s.version, "took", time.Since(began).Round(time.Millisecond))
	return s, nil
}

// URL is the server's base URL, e.g. http://127.0.0.1:3000 (no trailing slash).
func (s *Server) URL() string { return s.url }

// URLForPort is the base URL of a Gitea listening on 127.0.0.1:port.
func URLForPort(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }

// Registry is the host of the forge's container registry, e.g.
// 127.0.0.1:3000: images live at Registry()/<owner>/<name>:<tag>. It
// speaks plain HTTP on loopback (go-containerregistry and containerd use
// HTTP for 127.0.0.1 hosts).
func (s *Server) Registry() string { return strings.TrimPrefix(s.url, "http://") }

// RegistryForPort is the registry host of a Gitea listening on 127.0.0.1:port.
func RegistryForPort(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// Token is the admin's API access token. Never log it.
func (s *Server) Token() string { return s.token }

// AdminUser is the admin account's name.
func (s *Server) AdminUser() string { return s.opts.AdminUser }

// Pid is the gitea process id.
func (s *Server) Pid() int { return s.proc.Pid() }

// Version is what /api/v1/version reported.
func (s *Server) Version() string { return s.version }

// StateDir is the absolute state directory.
func (s *Server) StateDir() string { return s.layout.stateDir }

// LogTail returns the last lines of Gitea's log and console output, for
// error messages.
func (s *Server) LogTail() string { return logTail(s.layout, 30) }

// Stop stops Gitea: SIGTERM, then, by ctx's deadline (or after 15 s when
// ctx has none), SIGKILL to its whole process group so no git child is left.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
		}
		err = s.proc.Stop(ctx)
		_ = os.Remove(s.layout.pidPath())
	})
	return err
}

// gitea runs a gitea subcommand (not the server) against our config and
// returns its stdout.
func (s *Server) gitea(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--config", s.layout.configPath(), "--work-path", s.layout.stateDir, "--custom-path", s.layout.customDir()}, args...)
	cmd := exec.CommandContext(ctx, s.opts.Binary, full...)
	cmd.Env = s.env()
	cmd.Dir = s.layout.stateDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("gitea %s: %w: %s", strings.Join(args[:min(3, len(args))], " "), err, strings.TrimSpace(lastLines(stderr.String()+stdout.String(), 10)))
	}
	return stdout.Bytes(), nil
}

// env is the child's environment: ours minus anything that would point
// Gitea at another installation.
func (s *Server) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GITEA_") || strings.HasPrefix(kv, "GIT_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GITEA_WORK_DIR="+s.layout.stateDir, "GITEA_CUSTOM="+s.layout.customDir())
}

func (s *Server) startWeb() error {
	console, err := os.OpenFile(s.layout.consoleLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(console, "\n--- tug: starting gitea web at %s ---\n", time.Now().Format(time.RFC3339))
	console.Close()
	c := Command{
		Path: s.opts.Binary,
		Args: []string{"--config", s.layout.configPath(), "--work-path", s.layout.stateDir, "--custom-path", s.layout.customDir(), "web", "--pid", s.layout.pidPath(), "--quiet"},
		Env:  s.env(), Dir: s.layout.stateDir, Log: s.layout.consoleLog(),
	}
	run := s.opts.Run
	if run == nil {
		run = startChild
	}
	p, err := run(c)
	if err != nil {
		return fmt.Errorf("giteaserver: start %s: %w", s.opts.Binary, err)
	}
	s.proc = p
	return nil
}

// child is `gitea web` run as a plain child of this process.
type child struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error
}

func startChild(c Command) (Process, error) {
	console, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer console.Close() // the child holds its own descriptor
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	cmd.Stdout, cmd.Stderr = console, console
	// Own process group, so Stop can also kill the git children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		ch.waitErr = cmd.Wait()
		close(ch.exited)
	}()
	return ch, nil
}

func (c *child) Pid() int                { return c.cmd.Process.Pid }
func (c *child) Exited() <-chan struct{} { return c.exited }

func (c *child) Stop(ctx context.Context) error {
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-ctx.Done():
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.exited
	}
	// git processes Gitea started may still run in its group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// waitReady polls /api/v1/version until it answers, the process exits, or
// the deadline passes; failures carry the log tail.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	exited := s.proc.Exited()
	for {
		if v, err := fetchVersion(ctx, client, s.url); err == nil {
			s.version = v
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("giteaserver: gitea exited during start; log tail:\n%s", s.LogTail())
		case <-ctx.Done():
			return fmt.Errorf("giteaserver: %s/api/v1/version did not answer within %s: %w; log tail:\n%s", s.url, startTimeout, ctx.Err(), s.LogTail())
		case <-tick.C:
		}
	}
}

func fetchVersion(ctx context.Context, client *http.Client, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/version", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	v := strings.TrimSpace(string(body))
	if i := strings.Index(v, `"version":"`); i >= 0 {
		v = strings.TrimSuffix(v[i+len(`"version":"`):], `"}`)
	}
	return v, nil
}

// refuseIfRunning stops a second Gitea from opening the same SQLite
// database: a live process named in gitea.pid wins.
func refuseIfRunning(l layout) error {
	data, err := os.ReadFile(l.pidPath())
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return nil
	}
	if syscall.Kill(pid, 0) != nil {
		return nil // stale pid file
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !bytes.Contains(cmdline, []byte("gitea")) {
		return nil // pid reused by something else
	}
	return fmt.Errorf("giteaserver: a gitea (pid %d) is already running on %s; stop it first (kill %d)", pid, l.stateDir, pid)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("giteaserver: pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func logTail(l layout, n int) string {
	var b strings.Builder
	for _, p := range []string{l.consoleLog(), l.logFile()} {
		data, err := os.ReadFile(p)
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", p, lastLines(string(data), n))
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
