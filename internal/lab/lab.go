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

	"github.com/tug-gitops/tug/internal/fsutil"
	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/node"
	"github.com/tug-gitops/tug/internal/supervisor"
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
	// containers) or NodeFake (kwok). See ChooseNode.
	Node string
	// NodeReason says why the node is fake, for up and status.
	NodeReason string
}

// Lab is a running lab.
type Lab struct {
	opts      Options
	dir       string
	layout    Layout
	pki       *pki
	ports     *ports
	apiServer string
	sup       *supervisor.Supervisor
	self      supervisor.Proc

	mu      sync.Mutex
	comps   map[string]component // by name, as started
	status  Status
	restCfg *rest.Config
	start   time.Time
	stopped bool
	bins    map[tools.Tool]string
	argoUI  bool // bins[tools.ArgoCD] serves the web UI
	// background counts up's concurrent helpers.
	background sync.WaitGroup
	lock       *supervisor.Lock
	closers    []func(context.Context) // in-process services (embedded Redis) and Gitea
	forge      *giteaserver.Server     // runs under sup, as "gitea"
	node       *realNode               // nil with a fake node
	// rolesReady returns once the API server's default RBAC roles exist,
	// which components acting as themselves need (see apiServesAdmin).
	// It waits once, for every caller, and not at all on a restart.
	rolesReady func() error
}

// The phases a lab goes through, as status.json and `tug lab status` say.
const (
	PhaseBuilding = "building" // building the third-party programs
	PhaseStarting = "starting"
	PhaseReady    = "ready"
	PhaseFailed   = "failed"
	PhaseStopping = "stopping"
	PhaseStopped  = "stopped"
)

// stopTimeout bounds the supervisor's own stop; Down waits longer.
const stopTimeout = 20 * time.Second

// Start brings the lab up and returns once it is ready. Cancelling ctx
// stops it in whatever phase it is, the tool build included.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if opts.Name == "" {
		opts.Name = "default"
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	layout, err := LayoutOf(opts.StateRoot, opts.Name)
	if err != nil {
		return nil, err
	}
	dir := layout.Dir
	if err := os.MkdirAll(layout.Logs(), 0o700); err != nil {
		return nil, err
	}
	// One supervisor per state folder: a second one would fight the first
	// over ports and the database. The lock lives as long as this process
	// and names it.
	lock, err := supervisor.AcquireLock(layout.Lock())
	if err != nil {
		var locked *supervisor.LockedError
		if errors.As(err, &locked) {
			return nil, fmt.Errorf("another tug lab supervisor (pid %d) is using %s: see 'tug lab status', or stop it with 'tug lab down --name %s'", locked.Holder.PID, dir, opts.Name)
		}
		return nil, err
	}
	// A supervisor that was killed may have left components (or a build)
	// running on this state, holding the database and the ports: stop
	// them first.
	if prev, err := ReadStatus(dir); err == nil {
		stopRecorded(ctx, prev, opts.Log)
	}
	if err := undoNode(ctx, dir); err != nil {
		lock.Release()
		return nil, fmt.Errorf("revert the host changes a previous real node left: %w", err)
	}
	l := &Lab{opts: opts, dir: dir, layout: layout, start: time.Now(), lock: lock, self: supervisor.Self(), comps: map[string]component{}}
	l.sup = supervisor.New(supervisor.Options{Log: opts.Log, OnChange: l.writeStatus})
	l.status = Status{Name: opts.Name, StateDir: dir, Phase: PhaseBuilding, Supervisor: l.self.PID, SupervisorStart: l.self.Start, Kubeconfig: l.kubeconfig(), Endpoints: map[string]string{}, Node: opts.Node, NodeReason: opts.NodeReason}
	// Written before anything else, so 'tug lab down' finds a lab that is
	// still building its programs; a lab that cannot record itself could
	// not be found, so it does not start.
	first := l.snapshot()
	if err := writeStatus(dir, &first); err != nil {
		lock.Release()
		return nil, fmt.Errorf("cannot write the lab's status in %s: %w", dir, err)
	}
	upCtx, cancel := context.WithCancel(ctx)
	err = l.up(upCtx)
	cancel()
	// up's helpers stop at cancel; wait for them so nothing starts after Stop.
	l.background.Wait()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("stopped while %s: %w", l.phase(), context.Cause(ctx))
		}
		l.setPhase(PhaseFailed, err)
		stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		_ = l.Stop(stopCtx)
		return nil, err
	}
	l.setPhase(PhaseReady, nil)
	return l, nil
}

func (l *Lab) phase() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status.Phase
}

// recordBuild keeps the running build's process in the status, so that
// 'tug lab down' can stop it should this supervisor die.
func (l *Lab) recordBuild(t tools.Tool, pid int) {
	var b *BuildStatus
	if pid != 0 {
		if p, err := supervisor.Identify(pid); err == nil {
			b = &BuildStatus{Tool: string(t), Proc: p}
		}
	}
	l.mu.Lock()
	l.status.Build = b
	l.mu.Unlock()
	l.writeStatus()
}

// up starts the lab as a graph of named steps (see startSteps).
func (l *Lab) up(ctx context.Context) error {
	return runSteps(ctx, l.startSteps(), l.stepDone)
}

// startSteps are the steps of a start, each after those it needs: the
// build, then the state (PKI, ports, kubeconfigs); then at once the forge,
// the Argo CD parts that need no cluster, and kine with the API server;
// the controllers, the node and Argo CD once the API serves; the root
// Application once Argo CD and the forge are up; the apps last.
func (l *Lab) startSteps() []step {
	var (
		bins  map[tools.Tool]string
		cp    []component // kine, kube-apiserver, then those acting under their own identities
		port  int         // the forge's
		early *argoEarly
	)
	logs := func(components ...string) string {
		s := "See its log:"
		for _, c := range components {
			s += " 'tug lab logs " + c + " --name " + l.opts.Name + "'"
		}
		return s + "."
	}
	steps := []step{{
		name: "build",
		run: func(ctx context.Context) (err error) {
			bins, err = l.build(ctx)
			return err
		},
		hint: "The build's output is in the lab's log ('tug lab logs supervisor'). Running 'tug lab up' again retries it; what was built is kept.",
	}, {
		name: "prepare", after: []string{"build"},
		run: func(ctx context.Context) (err error) {
			cp, port, err = l.prepare(ctx, bins)
			if errors.Is(err, node.ErrHostTaken) {
				return hintedError{err, "Stop the lab that runs it ('tug lab down --name <its name>'), or start this one with '--node fake'."}
			}
			return err
		},
		hint: "The lab's state folder " + l.dir + " could not be set up: check that it is writable and has space, or start afresh with 'tug lab down --delete'.",
	}, {
		name: "forge", after: []string{"prepare"},
		run: func(ctx context.Context) error {
			return l.startForge(ctx, bins[tools.Gitea], port)
		},
		hint: logs("gitea"),
	}, {
		name: "argocd-early", after: []string{"prepare"},
		run: func(ctx context.Context) (err error) {
			early, err = l.startArgoEarly(ctx, bins)
			return err
		},
		hint: logs("argocd-repo-server"),
	}, {
		name: "kine", after: []string{"prepare"},
		run:  func(ctx context.Context) error { return l.run(ctx, cp[0]) },
		hint: logs("kine"),
	}, {
		name: "kube-apiserver", after: []string{"kine"},
		run: func(ctx context.Context) error {
			if err := l.run(ctx, cp[1]); err != nil {
				return err
			}
			return l.writeAdminKubeconfigs()
		},
		hint: logs("kube-apiserver"),
	}, {
		// The controller manager, scheduler and kwok act under identities
		// whose RBAC the API server creates in its last start-up step, a
		// second after it starts serving: on a new cluster they start once
		// it is done. On a restart the roles are stored, and they go ahead
		// at once, as bootstrap does (see apiServesAdmin).
		name: "controllers", after: []string{"kube-apiserver"},
		run: func(ctx context.Context) error {
			if err := l.rolesReady(); err != nil {
				return err
			}
			for _, c := range cp[2:] {
				if err := l.startComponent(c); err != nil {
					return err
				}
			}
			return nil
		},
		hint: logs("kube-controller-manager", "kube-scheduler"),
	}, {
		// The real node pulls the charts' images from the forge.
		name: "registry", after: []string{"forge"},
		run: func(ctx context.Context) error {
			if l.real() {
				return l.publishImages(ctx)
			}
			return nil
		},
		hint: logs("gitea"),
	}, {
		name: "node", after: []string{"controllers", "registry"},
		run: func(ctx context.Context) error {
			if err := l.forgetOtherNodes(ctx); err != nil {
				return err
			}
			if l.real() {
				return l.joinRealNode(ctx)
			}
			return l.ensureNode(ctx)
		},
		hint: logs(map[bool]string{true: "kubelet", false: "kwok"}[l.real()]),
	}, {
		// Once the forge has the repository, the repo-server clones it
		// while bootstrap runs; a failure only costs the root's first
		// comparison that clone (see prewarmRepoServer).
		name: "repo-server-warm-up", after: []string{"forge", "argocd-early"},
		run: func(ctx context.Context) error {
			l.prewarmRepoServer(ctx)
			return nil
		},
	}, {
		name: "argocd", after: []string{"argocd-early", "kube-apiserver"},
		run:  func(ctx context.Context) error { return l.startArgoCD(ctx, early) },
		hint: logs("argocd-application-controller"),
	}, {
		// Root is the first thing that reads the repository.
		name: "root", after: []string{"argocd", "forge"},
		run:  l.applyRoot,
		hint: logs("gitea", "argocd-repo-server"),
	}, {
		// The forge tells Argo CD of each push, as in production.
		name: "webhook", after: []string{"argocd", "forge"},
		run:  l.ensureWebhook,
		hint: logs("gitea"),
	}, {
		name: "argocd-api", after: []string{"argocd"},
		run:  func(ctx context.Context) error { return l.waitAPIComponents(ctx, early) },
		hint: logs("argocd-server"),
	}, {
		name: "apps", after: []string{"root", "node"},
		run:  l.waitApps,
		hint: "'tug status --context " + ContextName(l.opts.Name) + "' shows which Application is not Synced and Healthy, and why.",
	}}
	if l.real() {
		steps = append(steps, step{name: "frontends", after: []string{"apps"}, run: l.serveFrontends,
			hint: "'kubectl --context " + ContextName(l.opts.Name) + " get pods -A -o wide' shows the shop's pods and their node. " + logs("kubelet")})
	}
	return steps
}

// labTools are the third-party programs a lab runs: kwok only for the
// fake node (a real node's kubelet reports for itself), the runtime,
// kubelet, kube-proxy and CoreDNS only for the real one. A first start on
// the real node so builds nothing it will not run.
func labTools(real bool) []tools.Tool {
	var want []tools.Tool
	for _, t := range tools.All {
		if t != tools.Kwok || !real {
			want = append(want, t)
		}
	}
	if real {
		want = append(want, tools.Node...)
	}
	return want
}

// build builds (or finds) the third-party programs; the lab is then
// starting.
func (l *Lab) build(ctx context.Context) (map[tools.Tool]string, error) {
	want := labTools(l.real())
	t := l.opts.Tools
	builder := &tools.Builder{ModulesDir: t.ModulesDir, CacheDir: t.CacheDir, Log: t.Log, Building: l.recordBuild}
	bins, err := builder.EnsureAll(ctx, want...)
	if err != nil {
		return nil, err
	}
	if err := l.useArgoCDUI(ctx, bins); err != nil {
		return nil, err
	}
	l.bins = bins
	l.setPhase(PhaseStarting, nil)
	return bins, nil
}

// prepare sets up the state: the PKI and every identity's certificate, the
// ports, the control plane's components (returned in start order) and,
// for a real node, the host. It returns the forge's port too.
func (l *Lab) prepare(ctx context.Context, bins map[tools.Tool]string) ([]component, int, error) {
	var err error
	if l.pki, err = loadOrCreatePKI(l.layout.PKI()); err != nil {
		return nil, 0, err
	}
	for _, id := range identities {
		if err := l.pki.issue(id); err != nil {
			return nil, 0, err
		}
	}
	if l.ports, err = loadPorts(l.layout.Ports()); err != nil {
		return nil, 0, err
	}
	cp, err := l.controlPlaneComponents(bins)
	if err != nil {
		return nil, 0, err
	}
	forgePort, err := l.ports.get("gitea")
	if err != nil {
		return nil, 0, err
	}
	if l.real() {
		cp = cp[:len(cp)-1] // no fake node: no kwok
		if err := l.prepareRealNode(ctx, bins); err != nil {
			return nil, 0, err
		}
	}
	if err := l.ports.save(l.layout.Ports()); err != nil {
		return nil, 0, err
	}
	restart := l.hasCluster() // before kine creates the database
	l.rolesReady = sync.OnceValue(func() error {
		if restart {
			return nil // stored: the API server only re-reconciles them
		}
		return l.waitAPIFullyReady(ctx)
	})
	return cp, forgePort, nil
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

// kubeconfig is the administrator's kubeconfig for this lab.
func (l *Lab) kubeconfig() string { return l.layout.AdminKubeconfig() }

// restConfig returns the administrator's client configuration.
func (l *Lab) restConfig() (*rest.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.restCfg != nil {
		return rest.CopyConfig(l.restCfg), nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", l.kubeconfig())
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
	user, err := filepath.Abs(UserKubeconfigPath())
	if err != nil {
		return err
	}
	if within(user, l.layout.Dir) {
		// $KUBECONFIG already names this lab's own file (`tug lab env`).
		return nil
	}
	// Recorded before the file is changed: `tug lab env` points
	// $KUBECONFIG at the lab's own file, and a `down` run from that shell
	// must still clean the file `up` wrote to.
	if err := fsutil.WriteFileAtomic(l.layout.UserKubeconfigRecord(), []byte(user+"\n"), 0o600); err != nil {
		return err
	}
	return mergeIntoUserKubeconfig(user, l.kubeconfig(), ContextName(l.opts.Name), true)
}

// Stop stops every component at once (each after its clients), the
// forge and the embedded services, and releases the state; it returns by
// ctx's deadline, having killed what would not stop by then.
func (l *Lab) Stop(ctx context.Context) error {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return nil
	}
	l.stopped = true
	closers := l.closers
	l.mu.Unlock()
	l.setPhaseKeepError(PhaseStopping)
	errc := make(chan error, 1)
	go func() { errc <- l.sup.Stop(ctx) }()
	var wg sync.WaitGroup
	for _, c := range closers {
		wg.Add(1)
		go func() { defer wg.Done(); c(ctx) }()
	}
	wg.Wait()
	err := <-errc
	l.setPhaseKeepError(PhaseStopped)
	l.lock.Release()
	return err
}

// snapshot is the lab's status as the supervisor knows it, for status.json.
func (l *Lab) snapshot() Status {
	l.mu.Lock()
	s := l.status
	comps := make(map[string]component, len(l.comps))
	for k, v := range l.comps {
		comps[k] = v
	}
	l.mu.Unlock()
	s.Components = nil
	for _, ps := range l.sup.Status() {
		c := comps[ps.Name]
		cs := ComponentStatus{Name: ps.Name, PID: ps.PID, StartTime: ps.Start, State: string(ps.State), Ports: c.Ports, Restarts: ps.Restarts, Error: ps.Error, Log: ps.Log}
		cs.Healthy = ps.State == supervisor.StateRunning && cs.Error == ""
		s.Components = append(s.Components, cs)
	}
	s.sortComponents()
	return s
}

// superviseEvery is how often Supervise refreshes the status file and
// looks at the lab's CPU time.
const superviseEvery = 2 * time.Second

// Supervise keeps the status file fresh, and settles the components each
// time the lab goes quiet after working (settle.go), until ctx ends.
func (l *Lab) Supervise(ctx context.Context) {
	t := time.NewTicker(superviseEvery)
	defer t.Stop()
	watch := &settleWatch{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if watch.observe(l.cpuTime(), superviseEvery) {
				l.settle()
			}
			// A state folder deleted under a running lab (rm -rf instead of
			// 'tug lab down --delete') leaves nothing to resume and no way
			// for 'down' to find this supervisor: stop rather than restart
			// components forever.
			if _, err := os.Stat(l.layout.Ports()); errors.Is(err, os.ErrNotExist) {
				l.opts.Log.Error("the lab's state folder is gone; stopping", "dir", l.dir)
				return
			}
			l.writeStatus()
		}
	}
}

// stepDone records a start step's time in the status and logs it as
// progress.
func (l *Lab) stepDone(name string, took time.Duration) {
	at := time.Since(l.start)
	l.mu.Lock()
	l.status.Timings = append(l.status.Timings, PhaseTiming{Phase: name, Seconds: took.Seconds(), At: at.Seconds()})
	l.mu.Unlock()
	l.opts.Log.Info("lab step done", "step", name, "took", took.Round(10*time.Millisecond), "at", at.Round(10*time.Millisecond))
	l.writeStatus()
}

// setPhaseKeepError moves to phase, keeping the error a failure recorded.
func (l *Lab) setPhaseKeepError(phase string) {
	l.mu.Lock()
	l.status.Phase = phase
	l.mu.Unlock()
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
	s := l.snapshot()
	if err := writeStatus(l.dir, &s); err != nil {
		l.opts.Log.Warn("write status", "err", err)
	}
}
