package e2e

// GITOPS-004: drift on a dev and a prod app is corrected automatically, and
// `tug verify drift` says how fast.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/drift"
)

func TestDriftHealedBackendDev(t *testing.T)   { verifyDrift(t, "backend-dev") }
func TestDriftHealedFrontendProd(t *testing.T) { verifyDrift(t, "frontend-prod") }

// verifyDrift runs `tug verify drift APP` (every kind of drift, one at a
// time) and logs the healing times it prints.
func verifyDrift(t *testing.T, app string) {
	mustTugWait(t, 2*time.Minute, "", app)
	out, err := tugCmd(context.Background(), 5*time.Minute, "verify", "drift", app, "--kubeconfig", env.kubeconfig, "--timeout", "60s")
	t.Logf("tug verify drift %s:\n%s", app, out)
	if err != nil {
		t.Fatalf("tug verify drift %s: %v", app, err)
	}
	// The table: one healed row per drift kind, each with its seconds.
	for _, kind := range drift.AllKinds {
		row := ""
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, kind+" ") {
				row = line
			}
		}
		if row == "" || !strings.Contains(row, " yes ") {
			t.Errorf("no healed %s row in the table (row %q)", kind, row)
		}
	}
	// Whatever happened, the app is back at Git's state.
	mustTugWait(t, 2*time.Minute, "", app)
}
