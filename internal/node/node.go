package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tug-gitops/tug/internal/fsutil"
	"github.com/tug-gitops/tug/internal/image"
)

// Name is the real node's name.
const Name = "lab-node"

// KubeletClientUser is the API server's identity towards kubelets; the
// node binds it to system:kubelet-api-admin so logs, exec and
// port-forward work.
const KubeletClientUser = "kube-apiserver-kubelet-client"

// Sysctls the kubelet, kube-proxy and the CNI bridge plugin may set; the
// ledger keeps their values from before.
var Sysctls = []string{
	"net.ipv4.ip_forward",
	"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
	"kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
	"net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_tcp_timeout_established", "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
	"net.ipv4.conf.all.route_localnet", "net.bridge.bridge-nf-call-iptables",
}

// FixedPaths are paths outside the state folder that the kubelet,
// containerd or the CNI plugins use whatever their configuration says.
var FixedPaths = []string{
	"/var/lib/kubelet/device-plugins", "/var/lib/kubelet/pki", "/var/log/containers", "/var/log/pods",
	"/var/lib/cni", "/run/containerd", "/etc/cni", "/opt/cni", "/var/run/netns", "/run/netns",
	"/usr/libexec/kubernetes", "/etc/kubernetes",
}

// Proc is a program the lab supervises for the node.
type Proc struct {
	Name   string
	Binary string
	Args   []string
	Env    []string
	Ports  map[string]int
	Ready  func(ctx context.Context) error
}

// Config configures a node.
type Config struct {
	Lab         string // the lab's name: the network and cgroup derive from it
	Dir         string // the node's folder in the lab's state
	APIServer   string // https://127.0.0.1:PORT
	CACert      string // the lab's CA
	CAKey       string
	ServiceCIDR string
	Kubelet     string // binaries
	KubeProxy   string
	CoreDNS     string
	Runtime     Runtime
	RepoRoot    string // builds the images from apps/ and charts/
	ImageCache  string // image tarballs, by source digest
	// Mirrors sends pulls from a registry host (ghcr.io) to a mirror
	// (http://127.0.0.1:3000) that serves the same repository paths:
	// containerd's certs.d/<host>/hosts.toml.
	Mirrors map[string]string
	// Port hands out a free loopback port for a named listener, kept across restarts.
	Port func(name string) (int, error)
	Env  []string // the environment every process starts with
	Log  *slog.Logger
}

// Runtime is the node's container runtime, built from Go modules
// (lab/tools/runtime): containerd, its runc shim, ctr, runc, and the CNI
// plugins by the name containerd and the conflist give them.
type Runtime struct {
	Containerd, Shim, Ctr, Runc string
	CNIPlugins                  map[string]string // "bridge" → its binary
}

// CNIPlugins are the plugins containerd runs for every pod: loopback for
// the pod's lo, and the conflist's (cniConfig) bridge and host-local.
var CNIPlugins = []string{"bridge", "host-local", "loopback"}

func (r Runtime) check() error {
	var missing []string
	for name, p := range map[string]string{"containerd": r.Containerd, "containerd-shim-runc-v2": r.Shim, "ctr": r.Ctr, "runc": r.Runc} {
		if p == "" {
			missing = append(missing, name)
		}
	}
	for _, name := range CNIPlugins {
		if r.CNIPlugins[name] == "" {
			missing = append(missing, "CNI plugin "+name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("the node's runtime lacks %s (built from lab/tools/runtime)", strings.Join(missing, ", "))
	}
	return nil
}

// Node is a prepared real node.
type Node struct {
	cfg    Config
	Net    Network
	ledger *Ledger
	lock   net.Listener
	cgroup string // the pods' cgroup root, as the kubelet names it
	files  struct{ kubelet, kubeletKC, proxy, corefile string }
	ports  map[string]int
}

// Prepare checks the host, reverts what a previous run left, makes the
// host changes the node needs (each recorded in the ledger first) and
// writes the programs' configuration. Undo reverts it.
//
// One real node per host: kube-proxy's nftables tables and the kubelet's
// port are host-wide. The holder of the abstract socket hostLock runs it;
// the socket vanishes with its holder and leaves no file behind.
const hostLock = "@tug-lab-real-node"

// ErrHostTaken is Prepare's answer while another lab runs the real node.
var ErrHostTaken = errors.New("another lab on this host runs a real node (only one can: kube-proxy's tables are host-wide); stop it, or use --node fake")

// HostTaken reports whether a lab on this host runs a real node now.
func HostTaken() bool {
	c, err := net.Dial("unix", hostLock)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func Prepare(ctx context.Context, cfg Config) (*Node, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if err := cfg.Runtime.check(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, Net: NetworkFor(cfg.Lab), ports: map[string]int{}}
	n.cgroup = "/" + n.Net.Table
	ln, err := net.Listen("unix", hostLock)
	if err != nil {
		return nil, ErrHostTaken
	}
	n.lock = ln
	ok := false
	defer func() {
		if !ok {
			_ = n.Undo(context.Background())
		}
	}()
	// A supervisor killed before it could undo left a ledger: revert first.
	if err := UndoDir(ctx, cfg.Dir, cfg.Log); err != nil {
		return nil, fmt.Errorf("revert what the last run left: %w", err)
	}
	if n.ledger, err = OpenLedger(filepath.Join(cfg.Dir, "ledger.jsonl")); err != nil {
		return nil, err
	}
	if err := n.Net.checkFree(ctx); err != nil {
		return nil, err
	}
	if err := n.changeHost(ctx); err != nil {
		return nil, err
	}
	if err := n.writeConfigs(); err != nil {
		return nil, err
	}
	ok = true
	return n, nil
}

// changeHost records and makes every host change the node needs.
func (n *Node) changeHost(ctx context.Context) error {
	l := n.ledger
	for _, p := range FixedPaths {
		if err := l.RecordPath(p); err != nil {
			return err
		}
	}
	for _, k := range Sysctls {
		if err := l.RecordSysctl(k); err != nil {
			return err
		}
	}
	// The pods' cgroups go under a root of the node's own in every hierarchy.
	hier, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	var cgroups []string
	for _, h := range hier {
		d := filepath.Join(h, n.Net.Table)
		cgroups = append(cgroups, d)
		if _, err := os.Stat(d); err == nil {
			continue
		}
		if err := l.Record(Change{Kind: KindCgroup, Name: d}); err != nil {
			return err
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
	}
	// kube-proxy's tables (nftables mode), deleted on undo when they were not there.
	for _, t := range []string{"ip kube-proxy", "ip6 kube-proxy"} {
		fam, name, _ := strings.Cut(t, " ")
		if run(ctx, "nft", "list", "table", fam, name) != nil {
			if err := l.Record(Change{Kind: KindNftTable, Name: t}); err != nil {
				return err
			}
		}
	}
	if err := l.Record(Change{Kind: KindNftTable, Name: "inet " + n.Net.Table}); err != nil {
		return err
	}
	rules := filepath.Join(n.cfg.Dir, "nft.rules")
	if err := fsutil.WriteFileAtomic(rules, []byte(nftRules(n.Net)), 0o600); err != nil {
		return err
	}
	if err := run(ctx, "nft", "-f", rules); err != nil {
		return err
	}
	if !linkExists(n.Net.Bridge) {
		if err := l.Record(Change{Kind: KindLink, Name: n.Net.Bridge}); err != nil {
			return err
		}
		if err := run(ctx, "ip", "link", "add", n.Net.Bridge, "type", "bridge"); err != nil {
			return err
		}
	}
	for _, args := range [][]string{
		{"addr", "replace", n.Net.CIDR(), "dev", n.Net.Bridge},
		{"link", "set", n.Net.Bridge, "up"},
		// Traffic to a Service address kube-proxy has not translated yet
		// stays on the bridge instead of taking the default route off the host.
		{"route", "replace", n.cfg.ServiceCIDR, "dev", n.Net.Bridge, "src", n.Net.Gateway.String()},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	// Runtime state that would outlive its processes: containerd's task
	// state, and the CNI's address leases (kept, they would leak the /24
	// over restarts). Removed after the unmounting below; images and the
	// kubelet's own folder are kept for the next start.
	for _, p := range []string{"containerd/state", "cni/ipam"} {
		if err := l.Record(Change{Kind: KindPath, Name: filepath.Join(n.cfg.Dir, p)}); err != nil {
			return err
		}
	}
	if err := l.Record(Change{Kind: KindMounts, Name: n.cfg.Dir}); err != nil {
		return err
	}
	// Last recorded, first undone: every process of the node, and the
	// containers, which name no folder but live in the node's cgroups.
	return l.Record(Change{Kind: KindProcesses, Name: n.cfg.Dir + "/", Cgroups: cgroups})
}

// cgroupHierarchies lists the cgroup mount points (v1 hierarchies and the
// v2 one), each once.
func cgroupHierarchies() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, pf := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(pf) < 1 || (pf[0] != "cgroup" && pf[0] != "cgroup2") {
			continue
		}
		mp := unescapeMount(f[4])
		if f[3] != "/" || seen[mp] {
			continue // a bind mount of a sub-cgroup, or a second mount
		}
		seen[mp] = true
		out = append(out, mp)
	}
	if len(out) == 0 {
		return nil, errors.New("no cgroup hierarchy is mounted")
	}
	return out, nil
}

func (n *Node) port(name string) (int, error) {
	if p, ok := n.ports[name]; ok {
		return p, nil
	}
	p, err := n.cfg.Port(name)
	if err != nil {
		return 0, err
	}
	n.ports[name] = p
	return p, nil
}

func (n *Node) writeConfigs() error {
	d := n.cfg.Dir
	if err := n.linkRuntime(); err != nil {
		return err
	}
	for _, sub := range []string{"containerd/certs.d", "cni/net.d", "cni/ipam", "kubelet/root", "kubelet/pod-logs", "kubelet/volume-plugins", "pki", "coredns", "kube-proxy"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o700); err != nil {
			return err
		}
	}
	ca, err := loadCA(n.cfg.CACert, n.cfg.CAKey)
	if err != nil {
		return err
	}
	pki := filepath.Join(d, "pki")
	write := func(rel, content string) error {
		return fsutil.WriteFileAtomic(filepath.Join(d, rel), []byte(content), 0o600)
	}
	if err := write("containerd/config.toml", containerdConfig(d, image.PauseRef, n.cfg.Runtime.Runc)); err != nil {
		return err
	}
	if err := write("cni/net.d/10-tug.conflist", cniConfig(d, n.Net)); err != nil {
		return err
	}
	// Only the mirrors configured now: a registry dropped from Mirrors
	// must not keep a hosts.toml from an earlier start.
	if err := os.RemoveAll(filepath.Join(d, "containerd/certs.d")); err != nil {
		return err
	}
	for host, mirror := range n.cfg.Mirrors {
		if err := os.MkdirAll(filepath.Join(d, "containerd/certs.d", host), 0o700); err != nil {
			return err
		}
		if err := write(filepath.Join("containerd/certs.d", host, "hosts.toml"), hostsTOML(host, mirror)); err != nil {
			return err
		}
	}
	// Pods with dnsPolicy Default get this: no resolver at all.
	if err := write("kubelet/resolv.conf", ""); err != nil {
		return err
	}
	kc := func(id cert) (string, error) {
		crt, key, err := ca.issue(pki, id)
		if err != nil {
			return "", err
		}
		path := filepath.Join(d, id.name+".kubeconfig")
		return path, kubeconfig(path, n.cfg.APIServer, n.cfg.CACert, crt, key)
	}
	if n.files.kubeletKC, err = kc(cert{name: "kubelet", cn: "system:node:" + Name, orgs: []string{"system:nodes"}}); err != nil {
		return err
	}
	servingCrt, servingKey, err := ca.issue(pki, cert{name: "kubelet-serving", cn: Name, ips: []net.IP{n.Net.Gateway}, names: []string{Name}})
	if err != nil {
		return err
	}
	healthz, err := n.port("kubelet-healthz")
	if err != nil {
		return err
	}
	n.files.kubelet = filepath.Join(d, "kubelet/config.yaml")
	if err := write("kubelet/config.yaml", kubeletConfig(kubeletParams{Dir: d, CA: n.cfg.CACert, ServingCert: servingCrt, ServingKey: servingKey, CgroupRoot: n.cgroup, Net: n.Net, HealthzPort: healthz})); err != nil {
		return err
	}
	proxyKC, err := kc(cert{name: "kube-proxy", cn: "system:kube-proxy"})
	if err != nil {
		return err
	}
	ph, err := n.port("kube-proxy-healthz")
	if err != nil {
		return err
	}
	pm, err := n.port("kube-proxy-metrics")
	if err != nil {
		return err
	}
	n.files.proxy = filepath.Join(d, "kube-proxy/config.yaml")
	if err := write("kube-proxy/config.yaml", kubeProxyConfig(proxyKC, Name, n.Net, ph, pm)); err != nil {
		return err
	}
	dnsKC, err := kc(cert{name: "coredns", cn: "system:coredns"})
	if err != nil {
		return err
	}
	dh, err := n.port("coredns-health")
	if err != nil {
		return err
	}
	dr, err := n.port("coredns-ready")
	if err != nil {
		return err
	}
	n.files.corefile = filepath.Join(d, "coredns/Corefile")
	return write("coredns/Corefile", corefile(n.Net, dnsKC, dh, dr))
}

// linkRuntime puts the runtime's programs where containerd looks for
// them: the shim in bin/, first on containerd's PATH (containerd runs
// "containerd-shim-runc-v2" from its PATH), and the CNI plugins in
// cni/bin/ under their plugin names. Links to the tool cache, made anew
// each start, so a rebuilt tool is the one used.
func (n *Node) linkRuntime() error {
	links := map[string]string{filepath.Join("bin", "containerd-shim-runc-v2"): n.cfg.Runtime.Shim}
	for name, p := range n.cfg.Runtime.CNIPlugins {
		links[filepath.Join("cni", "bin", name)] = p
	}
	for _, sub := range []string{"bin", "cni/bin"} {
		if err := os.RemoveAll(filepath.Join(n.cfg.Dir, sub)); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(n.cfg.Dir, sub), 0o755); err != nil {
			return err
		}
	}
	for link, target := range links {
		abs, err := filepath.Abs(target)
		if err != nil {
			return err
		}
		if err := os.Symlink(abs, filepath.Join(n.cfg.Dir, link)); err != nil {
			return err
		}
	}
	return nil
}

// Containerd is the runtime's process; start it first and load the images
// (LoadImages) once it serves.
func (n *Node) Containerd() Proc {
	// A pull of an image the node lacks must not reach a registry (or a
	// DNS server) off this machine: every pull goes to a proxy on a
	// loopback port nothing listens on, and fails there. The node's bin/
	// comes first on PATH, so containerd runs the shim built with it.
	env := withPath(n.cfg.Env, filepath.Join(n.cfg.Dir, "bin"))
	env = append(env, "HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=", "https_proxy=http://127.0.0.1:9", "http_proxy=http://127.0.0.1:9", "no_proxy=")
	return Proc{
		Name: "containerd", Binary: n.cfg.Runtime.Containerd, Env: env,
		Args: []string{"--config", filepath.Join(n.cfg.Dir, "containerd/config.toml")},
		Ready: func(ctx context.Context) error {
			return n.ctr(ctx, "version")
		},
	}
}

// withPath returns env with dir first on its PATH.
func withPath(env []string, dir string) []string {
	out := make([]string, 0, len(env)+1)
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
			continue
		}
		out = append(out, kv)
	}
	if path == "" {
		path = os.Getenv("PATH")
	}
	return append(out, "PATH="+dir+string(os.PathListSeparator)+path)
}

func (n *Node) ctr(ctx context.Context, args ...string) error {
	return run(ctx, n.cfg.Runtime.Ctr, append([]string{"--address", filepath.Join(n.cfg.Dir, "containerd.sock"), "--namespace", "k8s.io"}, args...)...)
}

// LoadPause builds (or takes from the cache) the sandbox image and
// imports it into containerd's k8s.io namespace, pinned so the kubelet's
// image GC leaves it alone. It is the one image the node does not pull:
// it is no registry's (see image.PauseRef). The charts' images come
// through the registry mirror (Config.Mirrors).
// pauseC is Kubernetes' build/pause/linux/pause.c.
func (n *Node) LoadPause(ctx context.Context, pauseC string) error {
	start := time.Now()
	archive, err := image.PauseArchive(ctx, pauseC, n.cfg.ImageCache)
	if err != nil {
		return err
	}
	if err := n.ctr(ctx, "images", "import", archive); err != nil {
		return err
	}
	if err := n.ctr(ctx, "images", "label", image.PauseRef, "io.cri-containerd.pinned=pinned"); err != nil {
		return err
	}
	n.cfg.Log.Info("node sandbox image loaded", "image", image.PauseRef, "took", time.Since(start).Round(10*time.Millisecond))
	return nil
}

// Authorize creates what the node's identities need beyond Kubernetes'
// defaults (kube-proxy's system:node-proxier binding exists already):
// CoreDNS's read access, and the API server's kubelet client as
// system:kubelet-api-admin.
func Authorize(ctx context.Context, cs kubernetes.Interface) error {
	rbac := cs.RbacV1()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "tug-lab:coredns"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
	if _, err := rbac.ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, b := range []rbacv1.ClusterRoleBinding{
		{ObjectMeta: metav1.ObjectMeta{Name: "tug-lab:coredns"}, RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "tug-lab:coredns"},
			Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "system:coredns"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "tug-lab:kubelet-api-admin"}, RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:kubelet-api-admin"},
			Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: KubeletClientUser}}},
	} {
		if _, err := rbac.ClusterRoleBindings().Create(ctx, &b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// kubeletRoot is the kubelet's --root-dir in the node folder dir.
func kubeletRoot(dir string) string { return filepath.Join(dir, "kubelet", "root") }

// LongestSocket is the longest path of a Unix socket the node's programs
// make in the node folder dir: the kubelet's pod-resources API, which the
// kubelet serves under its root folder and exits if it cannot.
func LongestSocket(dir string) string {
	return filepath.Join(kubeletRoot(dir), "pod-resources", "kubelet.sock")
}

// Procs are the kubelet, kube-proxy and CoreDNS; start them once the API
// server serves and the images are loaded.
func (n *Node) Procs() []Proc {
	d := n.cfg.Dir
	healthz := func(port int, path string) func(context.Context) error {
		return func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", path, resp.Status)
			}
			return nil
		}
	}
	return []Proc{
		{
			Name: "kubelet", Binary: n.cfg.Kubelet, Env: n.cfg.Env,
			Args: []string{
				"--config=" + n.files.kubelet,
				"--kubeconfig=" + n.files.kubeletKC,
				"--root-dir=" + kubeletRoot(d),
				"--cert-dir=" + filepath.Join(kubeletRoot(d), "pki"),
				"--hostname-override=" + Name,
				"--node-ip=" + n.Net.Gateway.String(),
				"--node-labels=tug.dev/node=real",
			},
			Ports: map[string]int{"healthz": n.ports["kubelet-healthz"]},
			Ready: healthz(n.ports["kubelet-healthz"], "/healthz"),
		},
		{
			Name: "kube-proxy", Binary: n.cfg.KubeProxy, Env: n.cfg.Env,
			Args:  []string{"--config=" + n.files.proxy},
			Ports: map[string]int{"healthz": n.ports["kube-proxy-healthz"], "metrics": n.ports["kube-proxy-metrics"]},
			Ready: healthz(n.ports["kube-proxy-metrics"], "/metrics"),
		},
		{
			Name: "coredns", Binary: n.cfg.CoreDNS, Env: n.cfg.Env,
			Args:  []string{"-conf", n.files.corefile},
			Ports: map[string]int{"health": n.ports["coredns-health"], "ready": n.ports["coredns-ready"]},
			Ready: healthz(n.ports["coredns-ready"], "/ready"),
		},
	}
}

// WaitReady waits until the node is registered and Ready.
func WaitReady(ctx context.Context, cs kubernetes.Interface, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "not registered"
	for {
		if nd, err := cs.CoreV1().Nodes().Get(ctx, Name, metav1.GetOptions{}); err == nil {
			last = "not Ready"
			for _, c := range nd.Status.Conditions {
				if c.Type == corev1.NodeReady {
					if c.Status == corev1.ConditionTrue {
						return nil
					}
					last = fmt.Sprintf("not Ready: %s %s", c.Reason, c.Message)
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: %s after %s (see the kubelet's log)", Name, last, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Undo reverts every host change and releases the host-wide lock.
func (n *Node) Undo(ctx context.Context) error {
	var err error
	if n.ledger != nil {
		err = n.ledger.Undo(ctx, n.cfg.Log)
	}
	if n.lock != nil {
		n.lock.Close()
		n.lock = nil
	}
	return err
}

// UndoDir reverts what the ledger in a node folder lists: `lab down`
// calls it after the supervisor is gone, whether it stopped or was killed.
func UndoDir(ctx context.Context, dir string, log *slog.Logger) error {
	path := filepath.Join(dir, "ledger.jsonl")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	l, err := OpenLedger(path)
	if err != nil {
		return err
	}
	return l.Undo(ctx, log)
}

// HasLedger reports whether dir holds host changes not yet undone.
func HasLedger(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "ledger.jsonl"))
	return err == nil
}
