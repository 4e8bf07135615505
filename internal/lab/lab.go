// Package lab runs a real Kubernetes control plane, real Argo CD and a real
// git forge as local processes — no container engine — so the GitOps
// repository can be deployed and every acceptance criterion tested on a
// laptop or a CI runner.
//
// Lifecycle, in the manner of kind: Start brings every component up in a
// state directory and returns once the product's applications are Synced
// and Healthy; the returned Lab supervises the processes (restarting one
// that dies) until Stop. Starting again on the same state reuses it: the
// PKI, the ports, the database and the forge's repository.
package lab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/tools"
)

// insecureClient probes the health endpoints of components whose serving
// certificates they generate themselves; it only ever talks to 127.0.0.1.
var insecureClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // loopback health probes only
}

// Options configure a lab.
type Options struct {
	// Name tells labs apart; each has its own state and ports.
	Name string
	// StateRoot holds one folder per lab (default DefaultStateRoot()).
	StateRoot string
	// RepoRoot is the GitOps repository the lab deploys (a clone of tug).
	RepoRoot string
	// Tools builds or finds the third-party binaries.
	Tools *tools.Builder
	// UpdateUserKubeconfig adds the lab's context to the user's kubeconfig
	// and makes it current.
	UpdateUserKubeconfig bool
	// Log receives progress.
	Log *slog.Logger
	// Node is the kind of node: NodeReal (a kubelet running the pods in
	// containers) or NodeFake (kwok; the default). See ChooseNode.
	Node string
	// NodeReason says why the node is fake, for up and status.
	NodeReason string
}

// Lab is a running lab.
type Lab struct {
	opts      Options
	dir       string
	pki       *pki
	ports     *ports
	apiServer string

	mu      sync.Mutex
	procs   []*process
	status  Status
	restCfg *rest.Config
	start   time.Time
	last    time.Time
	stopped bool
	bins    map[tools.Tool]string
	// background counts up's concurrent helpers.
	background sync.WaitGroup
	unlock     func()
	closers    []func() // in-process services (embedded Redis, Gitea)
	forge      *giteaserver.Server
	node       *realNode // nil with a fake node
	// rolesReady returns once the API server's default RBAC roles exist,
	// which components acting as themselves need (see apiServesAdmin).
	// It waits once, for every caller, and not at all on a restart.
	rolesReady func() error
}

// Start brings the lab up and returns once it is ready.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if opts.Name == "" {
		opts.Name = "default"
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	dir, err := StateDir(opts.StateRoot, opts.Name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return nil, err
	}
	// One supervisor per state folder: a second one would fight the first
	// over ports and the database. The lock lives as long as this process.
	unlock, err := lockState(dir)
	if err != nil {
		return nil, err
	}
	// A supervisor that crashed may have left components running on this
	// state (they would hold the database and the ports): stop them first.
	if prev, err := ReadStatus(dir); err == nil {
		stopLeftovers(ctx, prev, opts.Log)
	}
	if err := undoNode(ctx, dir); err != nil {
		return nil, fmt.Errorf("revert the host changes a previous real node left: %w", err)
	}
	l := &Lab{opts: opts, dir: dir, start: time.Now(), last: time.Now(), unlock: unlock}
	l.status = Status{Name: opts.Name, StateDir: dir, Phase: "starting", Supervisor: os.Getpid(), Kubeconfig: l.Kubeconfig(), Endpoints: map[string]string{}, Node: opts.Node, NodeReason: opts.NodeReason}
	upCtx, cancel := context.WithCancel(ctx)
	err = l.up(upCtx)
	cancel()
	// up's helpers stop at cancel; wait for them so nothing starts after Stop.
	l.background.Wait()
	if err != nil {
		l.setPhase("failed", err)
		l.Stop(context.Background())
		return nil, err
	}
	l.setPhase("ready", nil)
	return l, nil
}

func (l *Lab) up(ctx context.Context) error {
	want := tools.All
	if l.real() {
		want = append(append([]tools.Tool(nil), tools.All...), tools.Node...)
	}
	bins, err := l.opts.Tools.EnsureAll(ctx, want...)
	if err != nil {
		return err
	}
	l.bins = bins
	l.timing("build")
	if l.pki, err = loadOrCreatePKI(filepath.Join(l.dir, "pki")); err != nil {
		return err
	}
	for _, id := range identities {
		if err := l.pki.issue(id); err != nil {
			return err
		}
	}
	if l.ports, err = loadPorts(filepath.Join(l.dir, "ports.json")); err != nil {
		return err
	}
	cp, err := l.controlPlaneComponents(bins)
	if err != nil {
		return err
	}
	forgePort, err := l.ports.get("gitea")
	if err != nil {
		return err
	}
	if l.real() {
		cp = cp[:len(cp)-1] // no fake node: no kwok
		if err := l.prepareRealNode(ctx, bins); err != nil {
			return err
		}
	}
	if err := l.ports.save(filepath.Join(l.dir, "ports.json")); err != nil {
		return err
	}
	l.timing("prepare")

	// The forge does not need the cluster: start it while the API server
	// comes up. Only the root Application needs it, and the repo-server's
	// warm-up (see prewarmRepoServer).
	forgeDone := make(chan error, 1)
	l.goBackground(func() { forgeDone <- l.startForge(ctx, bins[tools.Gitea], forgePort) })
	type earlyResult struct {
		early *argoEarly
		err   error
	}
	earlyDone := make(chan earlyResult, 1)
	l.goBackground(func() {
		e, err := l.startArgoEarly(ctx, bins)
		earlyDone <- earlyResult{e, err}
	})

	restart := l.hasCluster() // before kine creates the database
	l.rolesReady = sync.OnceValue(func() error {
		if restart {
			return nil // stored: the API server only re-reconciles them
		}
		return l.waitAPIFullyReady(ctx)
	})
	// kine, then the API server; the rest only need the API.
	if err := l.run(ctx, cp[0]); err != nil {
		return err
	}
	if err := l.run(ctx, cp[1]); err != nil {
		return err
	}
	l.timing("api ready")
	if err := l.writeAdminKubeconfigs(); err != nil {
		return err
	}
	// The controller manager, scheduler and kwok act under identities whose
	// RBAC the API server creates in its last start-up step, a second after
	// it starts serving: on a new cluster they start once it is done. On a
	// restart the roles are stored, and they go ahead at once, as bootstrap
	// does (see apiServesAdmin).
	nodeDone := make(chan error, 1)
	l.goBackground(func() {
		if err := l.rolesReady(); err != nil {
			nodeDone <- err
			return
		}
		for _, c := range cp[2:] {
			if err := l.startOnly(c); err != nil {
				nodeDone <- err
				return
			}
		}
		if l.real() {
			nodeDone <- l.joinRealNode(ctx)
			return
		}
		nodeDone <- l.ensureNode(ctx)
	})
	early := <-earlyDone
	if early.err != nil {
		return early.err
	}
	// Once the forge has the repository (the repo-server runs already), let
	// the repo-server clone it while bootstrap runs (see prewarmRepoServer).
	forgeReady := make(chan error, 1)
	l.goBackground(func() {
		err := <-forgeDone
		if err != nil {
			err = fmt.Errorf("forge: %w", err)
		}
		forgeReady <- err
		if err == nil {
			l.prewarmRepoServer(ctx)
		}
	})
	if err := l.startArgoCD(ctx, early.early, forgeReady); err != nil {
		return err
	}
	l.timing("argocd controller ready")
	if err := <-nodeDone; err != nil {
		return err
	}
	apiDone := make(chan error, 1)
	l.goBackground(func() { apiDone <- l.waitAPIComponents(ctx) })
	if err := l.waitApps(ctx); err != nil {
		return err
	}
	if err := <-apiDone; err != nil {
		return err
	}
	l.timing("apps healthy")
	if l.real() {
		return l.serveFrontends(ctx)
	}
	return nil
}

func (l *Lab) real() bool { return l.opts.Node == NodeReal }

// goBackground runs f beside up; Start waits for every such f to return.
func (l *Lab) goBackground(f func()) {
	l.background.Add(1)
	go func() {
		defer l.background.Done()
		f()
	}()
}

// run starts c and waits until it is ready.
func (l *Lab) run(ctx context.Context, c component) error {
	p, err := l.startProcess(c)
	if err != nil {
		return err
	}
	return p.waitReady(ctx, 60*time.Second)
}

func (l *Lab) startOnly(c component) error {
	_, err := l.startProcess(c)
	return err
}

// startProcess starts c and adds it to the supervised processes; several
// goroutines start components at once.
func (l *Lab) startProcess(c component) (*process, error) {
	p := newProcess(c, filepath.Join(l.dir, "logs"), l.opts.Log)
	if err := p.start(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	l.writeStatus()
	return p, nil
}

// Kubeconfig is the administrator's kubeconfig for this lab.
func (l *Lab) Kubeconfig() string { return filepath.Join(l.dir, "kubeconfig", "admin.yaml") }

// StateDir is where the lab keeps everything.
func (l *Lab) StateDir() string { return l.dir }

// RESTConfig returns the administrator's client configuration.
func (l *Lab) RESTConfig() (*rest.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.restCfg != nil {
		return rest.CopyConfig(l.restCfg), nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", l.Kubeconfig())
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	l.restCfg = cfg
	return rest.CopyConfig(cfg), nil
}

func (l *Lab) writeAdminKubeconfigs() error {
	if !l.opts.UpdateUserKubeconfig {
		return nil
	}
	return mergeIntoUserKubeconfig(UserKubeconfigPath(), l.Kubeconfig(), ContextName(l.opts.Name), true)
}

// Stop stops every component, the last started first.
func (l *Lab) Stop(ctx context.Context) error {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return nil
	}
	l.stopped = true
	procs := append([]*process(nil), l.procs...)
	l.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(10 * time.Second)
	}
	for _, c := range l.closers {
		c()
	}
	l.setPhase("stopped", nil)
	if l.unlock != nil {
		l.unlock()
	}
	return nil
}

// Status reports every component, probing each one's health now.
func (l *Lab) Status(ctx context.Context) Status { return l.snapshot(ctx, true) }

func (l *Lab) snapshot(ctx context.Context, probe bool) Status {
	l.mu.Lock()
	procs := append([]*process(nil), l.procs...)
	s := l.status
	l.mu.Unlock()
	s.Components = nil
	for _, p := range procs {
		cs := p.snapshot()
		if probe && p.c.Ready != nil {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			cs.Healthy = p.c.Ready(pctx) == nil
			cancel()
		} else {
			cs.Healthy = cs.PID != 0 && cs.Error == ""
		}
		s.Components = append(s.Components, cs)
	}
	if l.forge != nil {
		gs := ComponentStatus{Name: "gitea", PID: l.forge.Pid(), Ports: map[string]int{"http": l.ports.lookup("gitea")}, Log: filepath.Join(l.forge.StateDir(), "log", "gitea.log")}
		gs.Healthy = alive(gs.PID)
		s.Components = append(s.Components, gs)
	}
	s.sortComponents()
	return s
}

// Component returns the named component's current pid (0 if unknown).
func (l *Lab) Component(name string) (ComponentStatus, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if p.c.Name == name {
			return p.snapshot(), nil
		}
	}
	return ComponentStatus{}, fmt.Errorf("no component %q in this lab", name)
}

// WaitComponentHealthy waits until the named component is up and ready
// again (after a crash and restart, say).
func (l *Lab) WaitComponentHealthy(ctx context.Context, name string, timeout time.Duration) error {
	l.mu.Lock()
	var proc *process
	for _, p := range l.procs {
		if p.c.Name == name {
			proc = p
		}
	}
	l.mu.Unlock()
	if proc == nil {
		return fmt.Errorf("no component %q in this lab", name)
	}
	return proc.waitReady(ctx, timeout)
}

// Supervise keeps the status file fresh until ctx ends.
func (l *Lab) Supervise(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A state folder deleted under a running lab (rm -rf instead of
			// 'tug lab down --delete') leaves nothing to resume and no way
			// for 'down' to find this supervisor: stop rather than restart
			// components forever.
			if _, err := os.Stat(filepath.Join(l.dir, "ports.json")); errors.Is(err, os.ErrNotExist) {
				l.opts.Log.Error("the lab's state folder is gone; stopping", "dir", l.dir)
				return
			}
			l.writeStatus()
		}
	}
}

func (l *Lab) timing(phase string) {
	now := time.Now()
	l.mu.Lock()
	l.status.Timings = append(l.status.Timings, PhaseTiming{Phase: phase, Seconds: now.Sub(l.last).Seconds()})
	l.last = now
	l.mu.Unlock()
	l.opts.Log.Info("lab phase done", "phase", phase, "took", now.Sub(l.start).Round(10*time.Millisecond))
	l.writeStatus()
}

func (l *Lab) setPhase(phase string, err error) {
	l.mu.Lock()
	l.status.Phase = phase
	l.status.Error = ""
	if err != nil {
		l.status.Error = err.Error()
	}
	l.mu.Unlock()
	l.writeStatus()
}

func (l *Lab) writeStatus() {
	s := l.snapshot(context.Background(), false)
	if err := writeStatus(l.dir, &s); err != nil {
		l.opts.Log.Warn("write status", "err", err)
	}
}

// Timings returns how long each phase of Start took.
func (l *Lab) Timings() []PhaseTiming {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]PhaseTiming(nil), l.status.Timings...)
}
