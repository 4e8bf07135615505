package lab

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
