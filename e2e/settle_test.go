package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/tools"
)

// Every lab program built with the settle handler runs armed (the lab put
// TUG_SETTLED_GOGC in its environment) and is running and healthy, and no
// component of the lab exited between its start and the first test: the
// settle signal, sent once the lab is ready, ends none of them (Gitea, for
// one, stops at once on SIGUSR2, which is why the signal is another).
func TestLabComponentsAreArmedToSettle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := labStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var settling []string
	for _, c := range st.Components {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c.PID))
		if err != nil || !tools.Settles(tools.Tool(filepath.Base(exe))) {
			continue
		}
		settling = append(settling, c.Name)
		if c.State != "running" || !c.Healthy {
			t.Errorf("%s: %s, healthy %v: %s", c.Name, c.State, c.Healthy, c.Error)
		}
		environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", c.PID))
		if !strings.Contains("\x00"+string(environ), "\x00"+tools.SettledGOGCEnv+"=") {
			t.Errorf("%s (pid %d) runs without %s", c.Name, c.PID, tools.SettledGOGCEnv)
		}
	}
	// The control plane, kine, Argo CD's three and Gitea at least.
	if len(settling) < 8 {
		t.Errorf("components carrying the settle handler: %v, want at least the API server, controller manager, scheduler, kine, Argo CD's three and Gitea\n%s", settling, statusTable(st))
	}
	log, err := os.ReadFile(env.layout.SupervisorLog())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if !strings.Contains(line, "exited unexpectedly") && !strings.Contains(line, "giving up") {
			continue
		}
		if at, ok := logTime(line); ok && at.Before(env.testsBegan) {
			t.Errorf("a component exited before the first test: %s", line)
		}
	}
}

// logTime is the time of a log/slog text line (time=RFC3339).
func logTime(line string) (time.Time, bool) {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "time="); ok {
			at, err := time.Parse(time.RFC3339Nano, v)
			return at, err == nil
		}
	}
	return time.Time{}, false
}
