package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/tug-gitops/tug/internal/lab"
)

// A second lab with another --name runs beside the first: its own state,
// its own ports, and the first keeps working.
func TestTwoLabsSideBySide(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second lab")
	}
	ctx := context.Background()
	run := func(args ...string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, env.tug, append(args, "--name", "e2e-second", "--state-dir", env.stateRoot, "--repo", env.repo)...)
		cmd.Dir = env.repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tug %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	before, err := clientcmd.LoadFromFile(env.userKube)
	if err != nil {
		t.Fatal(err)
	}
	run("lab", "up", "--no-kubeconfig-update")
	defer run("lab", "down", "--delete")

	first, err := lab.ProbeStatus(ctx, env.dir)
	if err != nil {
		t.Fatal(err)
	}
	secondLayout, err := lab.LayoutOf(env.stateRoot, "e2e-second")
	if err != nil {
		t.Fatal(err)
	}
	second, err := lab.ProbeStatus(ctx, secondLayout.Dir)
	if err != nil {
		t.Fatal(err)
	}
	used := map[int]string{}
	for _, c := range first.Components {
		for _, p := range c.Ports {
			used[p] = "first/" + c.Name
		}
	}
	for _, c := range second.Components {
		if !c.Healthy {
			t.Errorf("second lab: %s not healthy", c.Name)
		}
		for _, p := range c.Ports {
			if owner, clash := used[p]; clash {
				t.Errorf("port %d used by %s and second/%s", p, owner, c.Name)
			}
		}
	}
	for _, c := range first.Components {
		if !c.Healthy {
			t.Errorf("first lab: %s not healthy with a second lab running", c.Name)
		}
	}
	after, err := clientcmd.LoadFromFile(env.userKube)
	if err != nil {
		t.Fatal(err)
	}
	if after.CurrentContext != before.CurrentContext || len(after.Contexts) != len(before.Contexts) {
		t.Errorf("--no-kubeconfig-update changed the user's kubeconfig: context %q → %q, %d → %d contexts", before.CurrentContext, after.CurrentContext, len(before.Contexts), len(after.Contexts))
	}
}
