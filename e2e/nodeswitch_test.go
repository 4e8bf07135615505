package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tug-gitops/tug/internal/lab"
	"github.com/tug-gitops/tug/internal/node"
)

// A lab's state made with the fake node and started again on the real
// one (as 'make lab' does where the host came to allow a real node) runs
// its pods on the real node: the fake node and the pods bound to it are
// gone, and when 'lab up' says the lab is ready the shop already serves.
// The test restarts the suite's shared lab twice (fake, then real again)
// and leaves it as it found it.
func TestLabRestartedOnTheOtherNodeRunsItsPodsThere(t *testing.T) {
	needRealNode(t)
	ctx := context.Background()
	restart := func(kind string) {
		t.Helper()
		if out, err := tugCmd(ctx, 2*time.Minute, "lab", "down"); err != nil {
			t.Fatalf("tug lab down: %v\n%s", err, out)
		}
		if out, err := tugCmd(ctx, 10*time.Minute, "lab", "up", "--node", kind); err != nil {
			t.Fatalf("tug lab up --node %s: %v\n%s\n%s", kind, err, tailLines(out, 30), dumpLogs())
		}
	}
	defer func() {
		// Whatever happened, the tests after this one get the real node.
		if st, err := lab.ReadStatus(env.dir); err != nil || st.Node != lab.NodeReal || t.Failed() {
			_, _ = tugCmd(ctx, 2*time.Minute, "lab", "down")
			if out, err := tugCmd(ctx, 10*time.Minute, "lab", "up", "--node", lab.NodeReal); err != nil {
				t.Errorf("could not bring the shared lab back on the real node: %v\n%s", err, tailLines(out, 30))
			}
		}
	}()

	restart(lab.NodeFake)
	podsOnlyOn(t, lab.FakeNodeName)

	restart(lab.NodeReal)
	podsOnlyOn(t, node.Name)
	// Ready means serving: no waiting here.
	for _, envName := range []string{"dev", "prod"} {
		files := forgeFiles(t, "charts/frontend/values-"+envName+".yaml", "charts/backend/values-"+envName+".yaml")
		fe := tagOf(t, "frontend", files["charts/frontend/values-"+envName+".yaml"])
		be := tagOf(t, "backend", files["charts/backend/values-"+envName+".yaml"])
		f, b, page, err := shopPage(ctx, "shop-"+envName)
		if err != nil {
			t.Fatalf("right after lab up, shop-%s: %v\n%s", envName, err, page)
		}
		if f != fe || b != be {
			t.Errorf("shop-%s shows frontend %s and backend %s, want %s and %s", envName, f, b, fe, be)
		}
	}
}

// podsOnlyOn checks that the cluster has one node, name, and that every
// pod is bound to it (or not bound yet).
func podsOnlyOn(t *testing.T, name string) {
	t.Helper()
	cs := clientset(t)
	ctx := context.Background()
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes.Items {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != name {
		t.Errorf("nodes %v, want only %s", names, name)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wrong []string
	for _, p := range pods.Items {
		if p.Spec.NodeName != "" && p.Spec.NodeName != name {
			wrong = append(wrong, fmt.Sprintf("%s/%s on %s", p.Namespace, p.Name, p.Spec.NodeName))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("pods on a node the lab no longer runs: %s", strings.Join(wrong, ", "))
	}
}
