// Package tools builds the lab's third-party programs — Kubernetes, Argo CD,
// Helm, kine, kwok, Gitea and the real node's containerd, runc and CNI
// plugins — from the Go modules pinned under lab/tools,
// once, into a cache directory, and finds them again on later runs.
//
// Each program is a `tool` dependency of a small module of its own, because
// their pinned Kubernetes libraries conflict (see lab/tools/README.md). A
// binary is cached under a key made of its module's go.mod and go.sum, the
// package, the build flags and the Go version, so changing a pin rebuilds it
// and nothing else does.
package tools

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tug-gitops/tug/internal/fsutil"
	"github.com/tug-gitops/tug/internal/procgroup"
)

// Tool names one program the lab runs.
type Tool string

// The programs tug builds.
const (
	KubeAPIServer         Tool = "kube-apiserver"
	KubeControllerManager Tool = "kube-controller-manager"
	KubeScheduler         Tool = "kube-scheduler"
	Kine                  Tool = "kine"
	Kwok                  Tool = "kwok"
	ArgoCD                Tool = "argocd"
	Helm                  Tool = "helm"
	Gitea                 Tool = "gitea"
	Kubectl               Tool = "kubectl"
	// The real node's programs (lab up --node real).
	Kubelet   Tool = "kubelet"
	KubeProxy Tool = "kube-proxy"
	CoreDNS   Tool = "coredns"
	// The real node's container runtime: containerd, its runc shim, ctr
	// (imports the sandbox image), runc, and the CNI plugins containerd
	// runs for every pod (loopback for the pod's lo, the conflist's bridge
	// and host-local). A CNI plugin's binary is cached under its tool name
	// (cni-bridge); the node links it into its CNI folder under the name
	// the conflist gives (bridge).
	Containerd     Tool = "containerd"
	ContainerdShim Tool = "containerd-shim-runc-v2"
	Ctr            Tool = "ctr"
	Runc           Tool = "runc"
	CNIBridge      Tool = "cni-bridge"
	CNIHostLocal   Tool = "cni-host-local"
	CNILoopback    Tool = "cni-loopback"
)

// Runtime lists the real node's container runtime tools.
var Runtime = []Tool{Containerd, ContainerdShim, Ctr, Runc, CNIBridge, CNIHostLocal, CNILoopback}

// CNIPlugins maps each CNI plugin tool to the plugin's name, the binary
// name containerd and the conflist look for.
var CNIPlugins = map[Tool]string{CNIBridge: "bridge", CNIHostLocal: "host-local", CNILoopback: "loopback"}

// Node lists the tools a real node needs on top of All: its runtime first
// (containerd starts before the control plane), then the kubelet,
// kube-proxy and CoreDNS.
var Node = append(append([]Tool(nil), Runtime...), Kubelet, KubeProxy, CoreDNS)

// All lists every tool, in the order a lab needs them.
var All = []Tool{Kine, KubeAPIServer, KubeControllerManager, KubeScheduler, Kwok, ArgoCD, Helm, Gitea}

type recipe struct {
	module  string // folder under lab/tools
	pkg     string // package to build
	ldflags string // extra -ldflags
	tags    string // build tags
	cgo     bool   // needs CGO_ENABLED=1
	noCgo   bool   // built with CGO_ENABLED=0 (a static binary, as upstream ships it)
	// fromArgoCDSource builds from argo-cd's source tree (argocdsrc.go),
	// version-stamped like upstream's release, instead of from the module
	// cache, so the build with the web UI can reuse its compiled packages.
	fromArgoCDSource bool
	// settle adds the settle handler to the program (settle.go).
	settle bool
}

const kubeVersionFlags = "-X k8s.io/component-base/version.gitVersion=v1.34.4 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34 " +
	"-X k8s.io/client-go/pkg/version.gitVersion=v1.34.4 -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=34"

var recipes = map[Tool]recipe{
	KubeAPIServer:         {module: "kube", pkg: "k8s.io/kubernetes/cmd/kube-apiserver", ldflags: kubeVersionFlags, settle: true},
	KubeControllerManager: {module: "kube", pkg: "k8s.io/kubernetes/cmd/kube-controller-manager", ldflags: kubeVersionFlags, settle: true},
	KubeScheduler:         {module: "kube", pkg: "k8s.io/kubernetes/cmd/kube-scheduler", ldflags: kubeVersionFlags, settle: true},
	Kine:                  {module: "kine", pkg: "github.com/k3s-io/kine", settle: true},
	Kwok:                  {module: "kine", pkg: "sigs.k8s.io/kwok/cmd/kwok"},
	ArgoCD:                {module: "argocd", pkg: "github.com/argoproj/argo-cd/v3/cmd", fromArgoCDSource: true, settle: true},
	Helm:                  {module: "argocd", pkg: "helm.sh/helm/v3/cmd/helm"},
	Gitea:                 {module: "gitea", pkg: "code.gitea.io/gitea", tags: "sqlite sqlite_unlock_notify", cgo: true, settle: true},
	Kubectl:               {module: "kube", pkg: "k8s.io/kubernetes/cmd/kubectl", ldflags: kubeVersionFlags},
	// kubelet and kube-proxy live in their own module, pinned to the same
	// k8s.io/kubernetes as "kube": adding them to "kube" would change its
	// go.mod/go.sum and so the cache key of the control plane's binaries.
	Kubelet:   {module: "node", pkg: "k8s.io/kubernetes/cmd/kubelet", ldflags: kubeVersionFlags, settle: true},
	KubeProxy: {module: "node", pkg: "k8s.io/kubernetes/cmd/kube-proxy", ldflags: kubeVersionFlags, settle: true},
	// CoreDNS with the node's plugins only: a main package of the tool
	// module's own (lab/tools/coredns/main.go says why).
	CoreDNS: {module: "coredns", pkg: toolModulePrefix + "coredns"},
	// containerd, runc and the CNI plugins with their upstream Makefiles'
	// tags and version flags. containerd leaves out the btrfs snapshotter
	// (no_btrfs: its cgo needs btrfs headers, and the node uses overlayfs);
	// the shim is static and without gRPC, as upstream builds it. runc
	// needs cgo (nsenter is C) and libseccomp's headers for seccomp, which
	// the pods' RuntimeDefault profile needs; upstream's libpathrs tag is
	// left out (a Rust library), so runc uses its pure-Go path resolution.
	Containerd:     {module: "runtime", pkg: "github.com/containerd/containerd/v2/cmd/containerd", ldflags: containerdVersionFlags, tags: "urfave_cli_no_docs no_btrfs", settle: true},
	ContainerdShim: {module: "runtime", pkg: "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2", ldflags: containerdVersionFlags, tags: "urfave_cli_no_docs no_grpc", noCgo: true},
	Ctr:            {module: "runtime", pkg: "github.com/containerd/containerd/v2/cmd/ctr", ldflags: containerdVersionFlags, tags: "urfave_cli_no_docs no_btrfs"},
	Runc:           {module: "runtime", pkg: "github.com/opencontainers/runc", tags: "seccomp urfave_cli_no_docs", cgo: true},
	CNIBridge:      {module: "runtime", pkg: "github.com/containernetworking/plugins/plugins/main/bridge", ldflags: cniVersionFlags, noCgo: true},
	CNIHostLocal:   {module: "runtime", pkg: "github.com/containernetworking/plugins/plugins/ipam/host-local", ldflags: cniVersionFlags, noCgo: true},
	CNILoopback:    {module: "runtime", pkg: "github.com/containernetworking/plugins/plugins/main/loopback", ldflags: cniVersionFlags, noCgo: true},
}

// The versions lab/tools/runtime/go.mod pins, for the programs' --version.
const (
	containerdVersionFlags = "-X github.com/containerd/containerd/v2/version.Version=v2.4.2"
	cniVersionFlags        = "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=v1.10.0"
)

// Builder finds or builds tool binaries.
type Builder struct {
	// ModulesDir is the folder holding one tool module per subfolder (lab/tools in the repo).
	ModulesDir string
	// CacheDir receives the binaries (default: the user cache dir + /tug/bin).
	CacheDir string
	// Log receives progress: what is built and how long it took.
	Log *slog.Logger
	// Building, when set, is told the pid of each build's go command as
	// it starts (the leader of the build's process group) and pid 0 when
	// it ends, so a supervisor can record it and another process can stop
	// it should the supervisor die.
	Building func(t Tool, pid int)

	// sem lets one goroutine build at a time (the go command already uses
	// every core); a channel, so waiting for it can end with the context.
	semOnce sync.Once
	sem     chan struct{}
}

// DefaultCacheDir is $XDG_CACHE_HOME/tug/bin (or ~/.cache/tug/bin).
func DefaultCacheDir() string {
	if d := os.Getenv("TUG_BIN_CACHE"); d != "" {
		return d
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "tug", "bin")
}

// FindModulesDir walks up from start to the folder holding lab/tools.
func FindModulesDir(start string) (string, error) {
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(dir, "lab", "tools")
		if st, err := os.Stat(filepath.Join(cand, "kube", "go.mod")); err == nil && !st.IsDir() {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no lab/tools folder above %s: run tug from a clone of the tug repository, or pass --repo", start)
		}
		dir = parent
	}
}

// Path returns where t's binary is cached, whether or not it exists yet.
func (b *Builder) Path(t Tool) (string, error) {
	r, ok := recipes[t]
	if !ok {
		return "", fmt.Errorf("unknown tool %q", t)
	}
	key, err := b.key(r)
	if err != nil {
		return "", err
	}
	cache := b.CacheDir
	if cache == "" {
		cache = DefaultCacheDir()
	}
	return filepath.Join(cache, string(t)+"-"+key, string(t)), nil
}

// Ensure returns the path of t's binary, building it first if it is not cached.
func (b *Builder) Ensure(ctx context.Context, t Tool) (string, error) {
	path, err := b.Path(t)
	if err != nil {
		return "", err
	}
	return b.ensureAt(ctx, path, func(ctx context.Context) error { return b.build(ctx, t, path) })
}

// ensureAt returns path once it exists, running build to make it when it
// does not: one build at a time in this process, and under a file lock
// across processes (parallel test binaries, a second tug), looking again
// once the lock is held.
func (b *Builder) ensureAt(ctx context.Context, path string, build func(context.Context) error) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	b.semOnce.Do(func() { b.sem = make(chan struct{}, 1) })
	select {
	case b.sem <- struct{}{}:
		defer func() { <-b.sem }()
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
	unlock, err := fsutil.Lock(ctx, path+".lock", true)
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return path, build(ctx)
}

// EnsureAll builds every tool that is missing, one after another (the go
// command already uses every core for one build).
func (b *Builder) EnsureAll(ctx context.Context, ts ...Tool) (map[Tool]string, error) {
	if len(ts) == 0 {
		ts = All
	}
	paths := make(map[Tool]string, len(ts))
	for _, t := range ts {
		p, err := b.Ensure(ctx, t)
		if err != nil {
			return nil, err
		}
		paths[t] = p
	}
	return paths, nil
}

func (b *Builder) build(ctx context.Context, t Tool, path string) error {
	return b.buildRecipe(ctx, t, recipes[t], path)
}

func (b *Builder) buildRecipe(ctx context.Context, t Tool, r recipe, path string) error {
	log := b.logger()
	log.Info("building", "tool", t, "package", r.pkg, "note", "first run only; cached afterwards")
	start := time.Now()
	// go build runs in the tool's module and reads the overlay's paths
	// relative to that folder, not to ours: every path it is given is
	// absolute.
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	modules, err := filepath.Abs(b.ModulesDir)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// dir is where go build runs; srcRoot holds the main package's tree.
	dir, ldflags := filepath.Join(modules, r.module), r.ldflags
	srcRoot := dir
	if r.fromArgoCDSource {
		src, err := b.argoCDSource(ctx)
		if err != nil {
			return fmt.Errorf("build %s: %w", t, err)
		}
		dir, srcRoot, ldflags = src.build, src.dir, src.ldflags()
	}
	env := os.Environ()
	if r.cgo {
		env = append(env, "CGO_ENABLED=1")
	}
	if r.noCgo {
		env = append(env, "CGO_ENABLED=0")
	}
	args := []string{"build", "-o", tmp}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	if r.tags != "" {
		args = append(args, "-tags", r.tags)
	}
	pkg := r.pkg
	if r.settle {
		work := path + ".settle"
		defer os.RemoveAll(work)
		replace, settlePkg, err := settleEntries(ctx, t, r, srcRoot, env, work)
		if err != nil {
			return fmt.Errorf("build %s: %w", t, err)
		}
		overlay := filepath.Join(work, "overlay.json")
		if err := writeOverlay(overlay, replace); err != nil {
			return fmt.Errorf("build %s: %w", t, err)
		}
		args, pkg = append(args, "-overlay", overlay), settlePkg
	}
	args = append(args, pkg)
	env, removeTemp, err := withTempDir(path+".tmpdir", env)
	if err != nil {
		return fmt.Errorf("build %s: %w", t, err)
	}
	defer removeTemp()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The go command runs the compiler, the linker and cgo's C compiler as
	// its children: they are all killed when ctx ends.
	procgroup.Own(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("build %s: %w", t, err)
	}
	if b.Building != nil {
		b.Building(t, cmd.Process.Pid)
		defer b.Building(t, 0)
	}
	err = cmd.Wait()
	// Nothing of the build outlives it, however it ended.
	procgroup.Kill(cmd)
	if err != nil {
		os.Remove(tmp)
		if ctx.Err() != nil {
			return fmt.Errorf("build %s stopped: %w", t, context.Cause(ctx))
		}
		return fmt.Errorf("build %s (go %s in %s): %w\n%s", t, strings.Join(args, " "), cmd.Dir, err, tail(out.Bytes(), 40))
	}
	// Rename last, so an interrupted build never leaves a half-written binary behind.
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	log.Info("built", "tool", t, "took", time.Since(start).Round(time.Second))
	return nil
}

func (b *Builder) key(r recipe) (string, error) {
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(b.ModulesDir, r.module, f))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && f == "go.sum" {
				continue
			}
			return "", fmt.Errorf("tool module %s: %w", r.module, err)
		}
		h.Write(data)
	}
	fmt.Fprintf(h, "%s|%s|%s|%v|%s|%s/%s", r.pkg, r.ldflags, r.tags, r.cgo, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if strings.HasPrefix(r.pkg, toolModulePrefix) {
		// The main package is the tool module's own: its source is part of
		// what is built.
		if err := hashGoFiles(h, filepath.Join(b.ModulesDir, r.module)); err != nil {
			return "", fmt.Errorf("tool module %s: %w", r.module, err)
		}
	}
	if r.noCgo {
		// Only where set, so the keys of the other tools stay as they were.
		h.Write([]byte("|CGO_ENABLED=0"))
	}
	if r.fromArgoCDSource {
		fmt.Fprintf(h, "|%s|%s", argoCDSourceLayout, argoCDLdflagsTemplate)
	}
	if r.settle {
		h.Write([]byte("|settle|" + settleSource))
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// toolModulePrefix is the import path of the tool modules' folder: a
// recipe's package under it is a main package of the tool module's own.
const toolModulePrefix = "github.com/tug-gitops/tug/lab/tools/"

// hashGoFiles writes the names and contents of the .go files in dir (not
// below it) to h, in name order.
func hashGoFiles(h io.Writer, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	for _, f := range files { // Glob sorts
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "|%s|%d|", filepath.Base(f), len(data))
		h.Write(data)
	}
	return nil
}

func (b *Builder) logger() *slog.Logger {
	if b.Log != nil {
		return b.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Ensure is a convenience for tests and commands run inside the repository:
// it finds lab/tools above the working directory and builds t into the
// default cache.
func Ensure(ctx context.Context, t Tool) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	dir, err := FindModulesDir(wd)
	if err != nil {
		return "", err
	}
	return defaultBuilder(dir).Ensure(ctx, t)
}

var (
	defaultMu       sync.Mutex
	defaultBuilders = map[string]*Builder{}
)

func defaultBuilder(dir string) *Builder {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if b, ok := defaultBuilders[dir]; ok {
		return b
	}
	b := &Builder{ModulesDir: dir, Log: slog.Default()}
	defaultBuilders[dir] = b
	return b
}

// withTempDir gives a command the folder dir, emptied first, as its TMPDIR
// and GOTMPDIR, and returns the environment to run it with and a func that
// removes the folder. A cancelled build is killed with SIGKILL, so the go
// command cannot remove its work folder ($WORK, hundreds of MB for the large
// tools), nor yarn its own: they are removed here however the command
// ended, and, should tug itself be killed, by the next build in the same
// folder, which runs under the same lock.
func withTempDir(dir string, env []string) ([]string, func(), error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	// exec.Cmd uses the last of duplicate keys: these override env's.
	env = append(slices.Clip(env), "TMPDIR="+dir, "GOTMPDIR="+dir)
	return env, func() { os.RemoveAll(dir) }, nil
}
