package e2e

// GITOPS-007: a correct destination is accepted; the classic mistake
// (https://kubernetes.default.svc:443, a different string for the same
// server) is caught by Argo CD at run time and by `tug validate` before
// merge.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/appstatus"
)

func TestDestinationPort443IsInvalidSpec(t *testing.T) {
	const (
		file  = "infra/gitops/apps/frontend.yaml"
		good  = "    server: https://kubernetes.default.svc\n"
		wrong = "    server: https://kubernetes.default.svc:443\n"
		app   = "frontend-dev" // the file's first document
	)
	mustTugWait(t, 2*time.Minute, "", "root")

	// Offline first: the forge's head passes tug validate ...
	clean, _ := forgeClone(t)
	if out, err := tugCmd(context.Background(), 3*time.Minute, "validate", clean); err != nil {
		t.Fatalf("tug validate on the forge's head (before the change) fails: %v\n%s", err, out)
	}

	sha, restore := forgeReplace(t, file, good, wrong, "frontend-dev: destination.server with :443")
	reverted := false
	t.Cleanup(func() {
		if !reverted {
			mustTugWait(t, 3*time.Minute, restore(), "root")
		}
	})

	// ... and rejects the commit with the change.
	changed, repo := forgeClone(t)
	if h, err := repo.Head(); err != nil || h.Hash().String() != sha {
		t.Logf("forge head moved past %s (someone else pushed): validating the head", sha[:12])
	}
	out, err := tugCmd(context.Background(), 3*time.Minute, "validate", changed)
	t.Logf("tug validate on the commit:\n%s", out)
	if err == nil {
		t.Errorf("tug validate accepted destination.server https://kubernetes.default.svc:443")
	}
	for _, want := range []string{"destination.unknown-server", file} {
		if !strings.Contains(out, want) {
			t.Errorf("tug validate's output lacks %q", want)
		}
	}

	// The real Argo CD: root syncs the changed child, whose destination
	// names no known cluster.
	dyn := dynamicClient(t)
	var msg string
	lastRefresh := time.Time{}
	eventually(t, 3*time.Minute, app+" reports InvalidSpecError", func(ctx context.Context) error {
		if time.Since(lastRefresh) > 5*time.Second { // rather than wait for Argo CD's poll
			_ = appstatus.RequestRefresh(ctx, dyn, appstatus.DefaultNamespace, "root")
			lastRefresh = time.Now()
		}
		a, err := application(ctx, t, app)
		if err != nil || a == nil {
			return fmt.Errorf("read %s: %v", app, err)
		}
		if a.Spec.Destination.Server != strings.TrimSpace(strings.TrimPrefix(wrong, "    server: ")) {
			return fmt.Errorf("root has not synced the change yet (destination %s)", a.Spec.Destination.Server)
		}
		for _, c := range a.Status.Conditions {
			if c.Type == "InvalidSpecError" {
				msg = c.Message
				return nil
			}
		}
		return fmt.Errorf("conditions %s", mustJSON(a.Status.Conditions))
	}, func() string { return appStatusTable(t) })
	t.Logf("Argo CD: %s: InvalidSpecError: %s", app, msg)
	if !strings.Contains(msg, "not found") || !strings.Contains(msg, "kubernetes.default.svc:443") {
		t.Errorf("InvalidSpecError %q does not say the :443 server was not found", msg)
	}
	if st, _ := tugCmd(context.Background(), time.Minute, "status", "--kubeconfig", env.kubeconfig); !strings.Contains(st, "InvalidSpecError") {
		t.Errorf("tug status does not show the InvalidSpecError:\n%s", st)
	} else {
		t.Logf("tug status:\n%s", st)
	}

	// Reverting restores Synced and Healthy at the revert commit.
	revert := restore()
	reverted = true
	out = mustTugWait(t, 3*time.Minute, revert, "root")
	t.Logf("after the revert %s: %s", revert[:12], strings.TrimSpace(lastLine(out)))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
