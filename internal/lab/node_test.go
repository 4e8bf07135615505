package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/node"
	"github.com/tug-gitops/tug/internal/tools"
)

// kwok must leave a real node to its kubelet (it took one over, reporting
// its pods Ready with made-up addresses), and hand out addresses no real
// node uses; the API server must reach kubelets by address, never by a
// name looked up off the machine, with a client certificate of its own.
func TestControlPlaneLeavesRealNodesAlone(t *testing.T) {
	dir := t.TempDir()
	p, err := loadOrCreatePKI(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	ports, err := loadPorts(filepath.Join(dir, "ports.json"))
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{dir: dir, layout: Layout{Dir: dir}, pki: p, ports: ports, opts: Options{Name: "t"}}
	cps, err := l.controlPlaneComponents(map[tools.Tool]string{})
	if err != nil {
		t.Fatal(err)
	}
	args := map[string][]string{}
	for _, c := range cps {
		args[c.Name] = c.Args
	}
	for _, want := range []string{"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--cidr=10.200.0.0/16"} {
		if !slices.Contains(args["kwok"], want) {
			t.Errorf("kwok lacks %s: %v", want, args["kwok"])
		}
	}
	if slices.Contains(args["kwok"], "--manage-all-nodes=true") {
		t.Error("kwok manages every node, real ones too")
	}
	joined := strings.Join(args["kube-apiserver"], " ")
	for _, want := range []string{"--kubelet-preferred-address-types=InternalIP", "--kubelet-client-certificate=" + p.certPath("apiserver-kubelet-client")} {
		if !strings.Contains(joined, want) {
			t.Errorf("the API server lacks %s", want)
		}
	}
}

func TestChooseNode(t *testing.T) {
	if k, reason, err := ChooseNode(NodeFake); err != nil || k != NodeFake || reason == "" {
		t.Errorf("fake: %s %q %v", k, reason, err)
	}
	hostErr := node.Check()
	if hostErr == nil && node.HostTaken() {
		hostErr = node.ErrHostTaken
	}
	if k, reason, err := ChooseNode(NodeAuto); err != nil || (k == NodeFake) != (hostErr != nil) || (k == NodeFake && reason != hostErr.Error()) {
		t.Errorf("auto on a host where node.Check says %v: %s %q %v", hostErr, k, reason, err)
	}
	if k, _, err := ChooseNode(NodeReal); (err != nil) != (node.Check() != nil) || (err == nil && k != NodeReal) {
		t.Errorf("real on a host where node.Check says %v: %s %v", hostErr, k, err)
	}
	if _, _, err := ChooseNode("virtual"); err == nil {
		t.Error("an unknown kind is accepted")
	}
}

// The shop's proxy opens a connection per request: one kept alive would
// stay with whichever pod kube-proxy picked when it was made, after the
// Service's endpoints have moved on.
func TestFrontendProxyConnectsAfreshForEachRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingListener{Listener: ln}
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "shop")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = upstream.Serve(counted) }()
	t.Cleanup(func() { upstream.Close() })

	address := func(context.Context) (string, error) { return ln.Addr().String(), nil }
	proxy := httptest.NewServer(frontendProxy(address, slog.New(slog.DiscardHandler)))
	t.Cleanup(proxy.Close)
	const requests = 3
	for i := 0; i < requests; i++ {
		resp, err := proxy.Client().Get(proxy.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "shop" {
			t.Fatalf("request %d: %s %q", i, resp.Status, body)
		}
	}
	if got := counted.accepted.Load(); got != requests {
		t.Fatalf("the upstream accepted %d connections for %d requests, want one each", got, requests)
	}

	// No address: a 502 that says why.
	none := httptest.NewServer(frontendProxy(func(context.Context) (string, error) {
		return "", errors.New("the frontend Service shop-dev/frontend has no address now")
	}, slog.New(slog.DiscardHandler)))
	t.Cleanup(none.Close)
	resp, err := none.Client().Get(none.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "has no address now") {
		t.Fatalf("without an address: %s %q, want 502 saying why", resp.Status, body)
	}
}

type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}
