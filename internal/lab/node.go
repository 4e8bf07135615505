package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tug-gitops/tug/internal/node"
	"github.com/tug-gitops/tug/internal/tools"
)

// Node kinds.
const (
	NodeReal = "real" // kubelet, containerd, runc: the product's pods really run
	NodeFake = "fake" // kwok: pods are marked Running and Ready, nothing runs
	NodeAuto = "auto" // real where the host allows it, else fake (the default)
)

// ChooseNode resolves the --node flag. "auto" is a real node where the
// host allows one (Linux, root, what node.Check names) and a fake one,
// with the reason, elsewhere. "real" asked for on a host that cannot run
// one is an error that says what is missing.
func ChooseNode(want string) (kind, reason string, err error) {
	switch want {
	case NodeFake:
		return NodeFake, "asked for (--node fake)", nil
	case NodeReal:
		if err := node.Check(); err != nil {
			return "", "", fmt.Errorf("--node real: %w", err)
		}
		return NodeReal, "", nil
	case NodeAuto, "":
		if err := node.Check(); err != nil {
			return NodeFake, err.Error(), nil
		}
		if node.HostTaken() {
			return NodeFake, node.ErrHostTaken.Error(), nil
		}
		return NodeReal, "", nil
	}
	return "", "", fmt.Errorf("--node %s: use auto, real or fake", want)
}

// realNode is the lab's side of a real node: the prepared node, and a
// channel that answers once its sandbox image is in containerd.
type realNode struct {
	*node.Node
	images chan error
}

func (l *Lab) nodeDir() string { return l.layout.Node() }

// prepareRealNode makes the node's host changes and starts containerd,
// then loads the sandbox image beside the control plane's start. The
// charts' images are pulled from the forge's registry (publishImages).
func (l *Lab) prepareRealNode(ctx context.Context, bins map[tools.Tool]string) error {
	n, err := node.Prepare(ctx, node.Config{
		Lab: l.opts.Name, Dir: l.nodeDir(), APIServer: l.apiServer,
		CACert: l.pki.caPath(), CAKey: l.pki.keyPath("ca"), ServiceCIDR: serviceCIDR,
		Kubelet: bins[tools.Kubelet], KubeProxy: bins[tools.KubeProxy], CoreDNS: bins[tools.CoreDNS],
		Runtime: runtimeOf(bins), RepoRoot: l.opts.RepoRoot, ImageCache: imageCache(),
		Mirrors: map[string]string{mirroredRegistry: "http://" + l.registryHost()},
		Port:    l.ports.get, Env: l.baseEnv(), Log: l.opts.Log,
	})
	if err != nil {
		return err
	}
	l.node = &realNode{Node: n, images: make(chan error, 1)}
	// Once every process has exited (containers' shims and mounts last).
	l.sup.AddCleanup("real node", n.Undo)
	// containerd starts beside the control plane, and the sandbox image
	// loads while it comes up: the kubelet needs it only once the API serves.
	p := n.Containerd()
	// The kubelet stops before its runtime.
	if err := l.startComponent(component{Name: p.Name, Binary: p.Binary, Args: p.Args, Env: p.Env, Ready: p.Ready, StopAfter: []string{"kubelet"}}); err != nil {
		return err
	}
	l.goBackground(func() {
		l.node.images <- func() error {
			pause, err := pauseSource(ctx, filepath.Join(l.opts.Tools.ModulesDir, "node"))
			if err != nil {
				return err
			}
			if err := l.waitReady(ctx, "containerd", 60*time.Second); err != nil {
				return fmt.Errorf("containerd: %w", err)
			}
			return n.LoadPause(ctx, pause)
		}()
	})
	return nil
}

// runtimeOf picks the node's container runtime out of the built tools.
func runtimeOf(bins map[tools.Tool]string) node.Runtime {
	r := node.Runtime{
		Containerd: bins[tools.Containerd], Shim: bins[tools.ContainerdShim], Ctr: bins[tools.Ctr], Runc: bins[tools.Runc],
		CNIPlugins: map[string]string{},
	}
	for t, name := range tools.CNIPlugins {
		r.CNIPlugins[name] = bins[t]
	}
	return r
}

// joinRealNode runs the kubelet, kube-proxy and CoreDNS once the API
// serves, the sandbox image is loaded and the charts' images are in the
// forge's registry, and waits for the node to be Ready.
func (l *Lab) joinRealNode(ctx context.Context) error {
	cs, err := l.clientset()
	if err != nil {
		return err
	}
	if err := node.Authorize(ctx, cs); err != nil {
		return err
	}
	if err := <-l.node.images; err != nil {
		return fmt.Errorf("node images: %w", err)
	}
	for _, p := range l.node.Procs() {
		if err := l.startComponent(component{Name: p.Name, Binary: p.Binary, Args: p.Args, Env: p.Env, Ports: p.Ports, Ready: p.Ready}); err != nil {
			return err
		}
	}
	return node.WaitReady(ctx, cs, 60*time.Second)
}

// pauseSource finds Kubernetes' pause.c in the module cache, through the
// node tool module (the same k8s.io/kubernetes as the kubelet).
func pauseSource(ctx context.Context, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes")
	cmd.Dir = module
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("find k8s.io/kubernetes for the pause image (go list -m in %s): %w", module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("k8s.io/kubernetes is not downloaded: run 'go mod download' in %s", module)
	}
	return filepath.Join(dir, "build", "pause", "linux", "pause.c"), nil
}

// serveFrontends proxies a loopback port per environment to its frontend
// Service (through kube-proxy's translation of the Service address), so a
// person opens the shop in a browser; the URLs go into the status.
func (l *Lab) serveFrontends(ctx context.Context) error {
	cs, err := l.clientset()
	if err != nil {
		return err
	}
	svcs, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=frontend"})
	if err != nil {
		return err
	}
	sort.Slice(svcs.Items, func(i, j int) bool { return svcs.Items[i].Namespace < svcs.Items[j].Namespace })
	var urls []string
	for _, s := range svcs.Items {
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == "None" || len(s.Spec.Ports) == 0 {
			continue
		}
		var ln net.Listener
		port, err := l.ports.listen("frontend/"+s.Namespace, func(port int) (err error) {
			ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			return err
		})
		if err != nil {
			return fmt.Errorf("frontend of %s: %w", s.Namespace, err)
		}
		srv := &http.Server{Handler: frontendProxy(serviceAddress(cs, s.Namespace, s.Name), l.opts.Log), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		l.closers = append(l.closers, func(context.Context) { srv.Close() })
		l.mu.Lock()
		url := "http://127.0.0.1:" + strconv.Itoa(port)
		l.status.Endpoints["frontend/"+s.Namespace] = url
		l.mu.Unlock()
		urls = append(urls, url+"/")
	}
	_ = l.ports.save(l.layout.Ports())
	l.writeStatus()
	return waitServing(ctx, urls, 2*time.Minute)
}

// waitServing waits until every URL answers 200. Argo CD's statuses say
// what the API holds, and on a restart they are the last start's until
// the controller has looked again: the lab is ready when a person opening
// the shop sees it.
func waitServing(ctx context.Context, urls []string, timeout time.Duration) error {
	for _, u := range urls {
		if err := poll(ctx, timeout, func() error { return httpOK(u)(ctx) }); err != nil {
			return fmt.Errorf("the shop at %s does not serve: %w", u, err)
		}
	}
	return nil
}

// frontendProxy forwards to the Service's address as it is at each
// request: Argo CD recreates a Service whose Application was deleted and
// synced again, and the new one has another ClusterIP. Each request opens
// its own connection, so kube-proxy picks an endpoint for it from the
// rules as they are then: on a restart the pods come back with addresses
// handed out afresh, and until their Service's endpoints follow, an old
// frontend address can belong to a backend pod; a kept-alive connection
// made then stayed with that pod, and the shop answered the backend's 404
// for as long as it was in use. A refused connection (a pod not yet
// serving, which waitServing asks about every few milliseconds while the
// lab starts) is the browser's 502 and the lab's debug line, not a line on
// the terminal of 'tug lab up'. No proxy from the environment: the
// Service's address is on this host's pod network.
func frontendProxy(address func(context.Context) (string, error), log *slog.Logger) http.Handler {
	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	transport := &http.Transport{
		DisableKeepAlives:     true,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hostPort, err := address(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: hostPort})
		p.Transport = transport
		p.ErrorLog = errorLog
		p.ServeHTTP(w, r)
	})
}

// serviceAddress is the ClusterIP and first port of a Service, read at
// each call.
func serviceAddress(cs kubernetes.Interface, namespace, name string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		s, err := cs.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || s.Spec.ClusterIP == "" || s.Spec.ClusterIP == "None" || len(s.Spec.Ports) == 0 {
			return "", fmt.Errorf("the frontend Service %s/%s has no address now (%v): is its Application synced?", namespace, name, err)
		}
		return net.JoinHostPort(s.Spec.ClusterIP, strconv.Itoa(int(s.Spec.Ports[0].Port))), nil
	}
}

// undoNode reverts a real node's host changes after its supervisor is
// gone (stopped or killed).
func undoNode(ctx context.Context, dir string) error {
	return node.UndoDir(ctx, Layout{Dir: dir}.Node(), nil)
}

// currentNode is the name of the node this start runs: the kubelet's or
// kwok's fake one.
func (l *Lab) currentNode() string {
	if l.real() {
		return node.Name
	}
	return FakeNodeName
}

// forgetOtherNodes deletes every Node but the one this start runs, with
// the pods bound to it. A lab's state made with one kind of node and
// started with the other (fake, then real where the host allows it, or
// the reverse) still holds the old node: nothing reports for it any more,
// but with the node lifecycle controller off it stays Ready for ever, so
// its pods are never replaced (and the scheduler may even place new ones
// there). The pods go at once (no grace period): no kubelet is left to
// confirm their end, and their ReplicaSets recreate them on the node that
// runs. On a new cluster or a restart on the same node there is nothing
// to delete.
func (l *Lab) forgetOtherNodes(ctx context.Context) error {
	cs, err := l.clientset()
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes.Items {
		if n.Name == l.currentNode() {
			continue
		}
		if err := deleteNode(ctx, cs, n.Name); err != nil {
			return err
		}
		l.opts.Log.Info("deleted a node this lab no longer runs, and its pods", "node", n.Name, "runs", l.currentNode())
	}
	return nil
}

// deleteNode deletes a Node and, without grace, the pods bound to it.
func deleteNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	if err := cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
	if err != nil {
		return fmt.Errorf("list the pods of node %s: %w", name, err)
	}
	now := int64(0)
	for _, p := range pods.Items {
		err := cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &now})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete pod %s/%s of node %s: %w", p.Namespace, p.Name, name, err)
		}
	}
	return nil
}
