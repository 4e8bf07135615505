package lab

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tug-gitops/tug/internal/fsutil"
	"github.com/tug-gitops/tug/internal/node"
	"github.com/tug-gitops/tug/internal/tools"
)

//go:embed kwok-stages.yaml
var kwokStages []byte

const (
	serviceCIDR = "10.96.0.0/16"
	// The fake node's pods: apart from a real node's (10.240.0.0/13).
	podCIDR = "10.200.0.0/16"
	// FakeNodeName is the node kwok runs for a lab without a real one.
	FakeNodeName = "lab-node-1"
)

// Identities the lab issues client certificates for. Each control-plane
// component gets its own, so RBAC applies to it as in a real cluster.
var identities = []identity{
	{name: "apiserver", cn: "kube-apiserver", server: true},
	{name: "admin", cn: "tug-lab-admin", orgs: []string{"system:masters"}},
	{name: "controller-manager", cn: "system:kube-controller-manager"},
	{name: "scheduler", cn: "system:kube-scheduler"},
	// kwok plays every node's kubelet: it updates node and pod status for
	// all nodes, which the Node authorizer grants only per node, so it
	// runs as an administrator.
	{name: "kwok", cn: "kwok-controller", orgs: []string{"system:masters"}},
	{name: "argocd-server", cn: "argocd-server", server: true},
	// The API server towards kubelets (logs, exec, port-forward).
	{name: "apiserver-kubelet-client", cn: node.KubeletClientUser},
}

func (l *Lab) controlPlaneComponents(bins map[tools.Tool]string) ([]component, error) {
	p := l.pki
	saKey, saPub, err := p.serviceAccountKey()
	if err != nil {
		return nil, err
	}
	kinePort, err := l.ports.get("kine")
	if err != nil {
		return nil, err
	}
	apiPort, err := l.ports.get("apiserver")
	if err != nil {
		return nil, err
	}
	kcmPort, err := l.ports.get("controller-manager")
	if err != nil {
		return nil, err
	}
	schedPort, err := l.ports.get("scheduler")
	if err != nil {
		return nil, err
	}
	kwokPort, err := l.ports.get("kwok")
	if err != nil {
		return nil, err
	}
	l.apiServer = "https://127.0.0.1:" + strconv.Itoa(apiPort)

	for _, id := range []string{"controller-manager", "scheduler", "kwok", "admin"} {
		kc := l.layout.Kubeconfig(id)
		if err := writeKubeconfig(kc, l.apiServer, p.caPath(), p.certPath(id), p.keyPath(id), "", "default", ContextName(l.opts.Name)); err != nil {
			return nil, err
		}
	}
	stages := filepath.Join(l.layout.ComponentDir("kwok"), "stages.yaml")
	if err := os.MkdirAll(filepath.Dir(stages), 0o700); err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(stages, kwokStages, 0o600); err != nil {
		return nil, err
	}
	dataDir := l.layout.Kine()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	kc := func(id string) string { return l.layout.Kubeconfig(id) }
	env := l.baseEnv()

	kine := component{
		Name: "kine", Binary: bins[tools.Kine], Env: env, Dir: dataDir,
		Args: []string{
			"--listen-address=127.0.0.1:" + strconv.Itoa(kinePort),
			"--endpoint=sqlite://" + filepath.Join(dataDir, "state.db") + "?_journal_mode=WAL&_busy_timeout=30000&_synchronous=NORMAL&_txlock=immediate&cache=shared",
			"--metrics-bind-address=0",
		},
		Ports: map[string]int{"etcd": kinePort},
		Ready: tcpReady(kinePort),
		// The API server stopped after its storage hangs on shutdown
		// until killed.
		StopAfter: []string{"kube-apiserver"},
	}
	apiserver := component{
		Name: "kube-apiserver", Binary: bins[tools.KubeAPIServer], Env: env,
		Args: []string{
			"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(kinePort),
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(apiPort),
			"--cert-dir=" + l.layout.ComponentDir("apiserver"),
			"--tls-cert-file=" + p.certPath("apiserver"),
			"--tls-private-key-file=" + p.keyPath("apiserver"),
			"--client-ca-file=" + p.caPath(),
			"--service-account-key-file=" + saPub,
			"--service-account-signing-key-file=" + saKey,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-cluster-ip-range=" + serviceCIDR,
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=false",
			"--anonymous-auth=false",
			"--profiling=false",
			// The lab has one API server on loopback: the `kubernetes`
			// Endpoints would point at 127.0.0.1, which the API rejects.
			"--endpoint-reconciler-type=none",
			"--enable-priority-and-fairness=false",
			// The node-lifecycle controller, which would lift the not-ready
			// taint this plugin puts on a new node, is not run (kwok keeps
			// the node Ready; nothing needs evicting), so the taint must
			// not be put there in the first place.
			"--disable-admission-plugins=TaintNodesByCondition",
			// Kubelets by address, never by name: a name would be looked
			// up in the host's resolver, off the machine.
			"--kubelet-preferred-address-types=InternalIP",
			"--kubelet-client-certificate=" + p.certPath("apiserver-kubelet-client"),
			"--kubelet-client-key=" + p.keyPath("apiserver-kubelet-client"),
		},
		Ports: map[string]int{"https": apiPort},
		Ready: l.apiServesAdmin,
	}
	kcm := component{
		Name: "kube-controller-manager", Binary: bins[tools.KubeControllerManager], Env: env,
		Args: []string{
			"--kubeconfig=" + kc("controller-manager"),
			"--authentication-kubeconfig=" + kc("controller-manager"),
			"--authorization-kubeconfig=" + kc("controller-manager"),
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(kcmPort),
			"--cert-dir=" + l.layout.ComponentDir("controller-manager"),
			"--root-ca-file=" + p.caPath(),
			"--service-account-private-key-file=" + saKey,
			"--use-service-account-credentials=true",
			"--leader-elect=false",
			"--flex-volume-plugin-dir=" + filepath.Join(l.layout.ComponentDir("controller-manager"), "flex"),
			"--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller,-persistentvolume-expander",
			// Each controller starts with its own ServiceAccount's
			// credentials, a few requests each; at the default 20 per second
			// starting them took 4 s, and the Deployment controller came
			// last but one.
			"--kube-api-qps=200",
			"--kube-api-burst=400",
			"--profiling=false",
		},
		Ports: map[string]int{"https": kcmPort},
		Ready: httpsHealthy(kcmPort),
	}
	sched := component{
		Name: "kube-scheduler", Binary: bins[tools.KubeScheduler], Env: env,
		Args: []string{
			"--kubeconfig=" + kc("scheduler"),
			"--authentication-kubeconfig=" + kc("scheduler"),
			"--authorization-kubeconfig=" + kc("scheduler"),
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(schedPort),
			"--cert-dir=" + l.layout.ComponentDir("scheduler"),
			"--leader-elect=false",
			"--profiling=false",
		},
		Ports: map[string]int{"https": schedPort},
		Ready: httpsHealthy(schedPort),
	}
	kwok := component{
		Name: "kwok", Binary: bins[tools.Kwok], Env: env,
		Args: []string{
			"--kubeconfig=" + kc("kwok"),
			"--config=" + stages,
			// Only the fake node: a real node's kubelet reports for itself.
			"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
			"--cidr=" + podCIDR,
			"--node-ip=127.0.0.1",
			"--server-address=127.0.0.1:" + strconv.Itoa(kwokPort),
			"--node-lease-duration-seconds=40",
		},
		Ports: map[string]int{"http": kwokPort},
		Ready: tcpReady(kwokPort),
	}
	return []component{kine, apiserver, kcm, sched, kwok}, nil
}

// baseEnv is the environment every component starts with: the user's,
// with caches and temporary files kept inside the lab's state, and the Go
// garbage collector's target at componentGOGC, armed to settle whenever
// the lab goes quiet (settle.go), unless the user set GOGC.
func (l *Lab) baseEnv() []string {
	env := append(os.Environ(),
		"KUBECACHEDIR="+l.layout.Cache("kube"),
		"HOME="+l.layout.Home(),
	)
	if _, set := os.LookupEnv("GOGC"); !set {
		env = append(env, "GOGC="+componentGOGC)
	}
	return append(env, settleEnv()...)
}

// componentGOGC lets a component's heap grow to three times what is live
// before the garbage collector runs, instead of Go's default two. A lab's
// start-up is CPU-bound on two cores, and a quarter to a third of the API
// server's CPU while it establishes Argo CD's CRDs was garbage collection.
// In 5 interleaved pairs of empty-state starts on a busy host it took
// 9.6–10.6 s (mean 9.9) against 10.1–11.4 s (mean 10.9) with Go's default,
// with 12 % less CPU in all, for about 280 MB more memory across the lab
// (1.7 → 2.0 GB); GOGC=400 cost 800 MB and was no faster.
const componentGOGC = "200"

// hasCluster reports whether the state holds a cluster already (its
// database), with its default RBAC roles stored: a restart.
func (l *Lab) hasCluster() bool {
	return fileExists(l.layout.KineDB())
}

// apiServesAdmin is the API server's readiness less its last two start-up
// steps, which create (on a new cluster) or reconcile (on a restart) the
// default RBAC roles and priority classes. Both steps first sleep a second
// (wait.Poll in kube-apiserver), so full readiness comes a second and a
// half after the API serves. The lab's admin (system:masters) needs no
// role: bootstrap goes ahead at once, and the components acting under
// their own identities wait for the rest (Lab.rolesReady) unless the
// roles are stored already.
func (l *Lab) apiServesAdmin(ctx context.Context) error {
	return l.readyz(ctx, "poststarthook/rbac/bootstrap-roles", "poststarthook/scheduling/bootstrap-system-priority-classes")
}

// waitAPIFullyReady waits for every readiness check of the API server,
// which components acting under their own identities need.
func (l *Lab) waitAPIFullyReady(ctx context.Context) error {
	return poll(ctx, 60*time.Second, func() error { return l.readyz(ctx) })
}

// readyz asks /readyz, leaving out the named checks.
func (l *Lab) readyz(ctx context.Context, exclude ...string) error {
	cs, err := l.clientset()
	if err != nil {
		return err
	}
	req := cs.Discovery().RESTClient().Get().AbsPath("/readyz")
	for _, check := range exclude {
		req = req.Param("exclude", check)
	}
	body, err := req.DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("readyz: %v %s", err, body)
	}
	return nil
}

// ensureNode registers the fake node kwok brings to Ready.
func (l *Lab) ensureNode(ctx context.Context) error {
	cs, err := l.clientset()
	if err != nil {
		return err
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        FakeNodeName,
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": FakeNodeName, "kubernetes.io/os": "linux"},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
		},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("110")},
		},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", FakeNodeName, err)
	}
	return poll(ctx, 60*time.Second, func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, FakeNodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s not Ready yet", FakeNodeName)
	})
}

func (l *Lab) clientset() (*kubernetes.Clientset, error) {
	cfg, err := l.restConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func tcpReady(port int) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// httpsHealthy probes /healthz of a component serving a self-signed certificate.
func httpsHealthy(port int) func(context.Context) error {
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://127.0.0.1:"+strconv.Itoa(port)+"/healthz", nil)
		resp, err := insecureClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	}
}

// permanentError stops poll at once.
type permanentError struct{ error }

// poll runs f until it returns nil or the timeout passes, returning f's last error.
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		var p permanentError
		if errors.As(err, &p) {
			return p.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
