// Package e2e runs tug's end-to-end tests against one real lab per test
// binary: a kube-apiserver, Argo CD and Gitea started by `tug lab up` as
// local processes. Each behaviour the README promises of the lab, promotion,
// bootstrap, drift repair and the forge is a test here.
//
// The lab is started once in TestMain (the first run builds Kubernetes,
// Argo CD and Gitea from their Go modules; later runs reuse the cache) and
// stopped at the end with `tug lab down`, which must leave no process and
// no listening port behind. `go test -short` skips the package.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tug-gitops/tug/internal/lab"
	"github.com/tug-gitops/tug/internal/supervisor"
)

// env is what every test gets: the lab started for this test binary.
var env struct {
	tug        string // path of the tug binary under test
	repo       string // the repository the lab deploys
	stateRoot  string
	name       string
	dir        string // the lab's state folder
	layout     lab.Layout
	kubeconfig string // the administrator's kubeconfig
	userKube   string // the test's stand-in for ~/.kube/config
	status     *lab.Status
	cfg        *rest.Config
	upOutput   string
	// startMetrics is the API server's /metrics right after lab up, before
	// any test (the fault tests restart the API server, which resets them).
	startMetrics string
	// testsBegan is when the first test could start: what happened in the
	// lab before it happened in its start (and its settling, settle_test.go).
	testsBegan time.Time
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	code, err := runWithLab(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func runWithLab(m *testing.M) (int, error) {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "tug-e2e-*")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(work)
	repo, err := filepath.Abs("..")
	if err != nil {
		return 1, err
	}
	env.repo, env.stateRoot, env.name = repo, filepath.Join(work, "state"), "e2e"
	env.layout, _ = lab.LayoutOf(env.stateRoot, env.name)
	env.dir = env.layout.Dir
	env.userKube = filepath.Join(work, "kube", "config")
	os.Setenv("KUBECONFIG", env.userKube)

	env.tug = filepath.Join(work, "tug")
	build := exec.Command("go", "build", "-o", env.tug, "./cmd/tug")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("build tug: %v\n%s", err, out)
	}

	// The suite runs on a real node (kubelet, containerd) where the host
	// allows one (TUG_E2E_NODE=fake or real chooses):
	// the host is compared before and after (see node_test.go).
	before, err := hostBefore(ctx)
	if err != nil {
		return 1, err
	}
	start := time.Now()
	out, err := tugCmd(ctx, 75*time.Minute, "lab", "up", "--node", e2eNode())
	env.upOutput = out
	fmt.Fprintf(os.Stderr, "e2e: tug lab up took %s\n%s\n", time.Since(start).Round(time.Millisecond), tailLines(out, 30))
	defer func() {
		// Whatever happened, stop the lab.
		_, _ = tugCmd(context.Background(), 2*time.Minute, "lab", "down")
	}()
	if err != nil {
		// The plan bootstrap prints can push the cause out of the tail.
		var errLines []string
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "Error:") {
				errLines = append(errLines, line)
			}
		}
		return 1, fmt.Errorf("tug lab up: %v\n%s\n%s", err, strings.Join(errLines, "\n"), dumpLogs())
	}
	if env.status, err = lab.ReadStatus(env.dir); err != nil {
		return 1, err
	}
	env.kubeconfig = env.status.Kubeconfig
	if env.cfg, err = clientcmd.BuildConfigFromFlags("", env.kubeconfig); err != nil {
		return 1, err
	}
	if env.startMetrics, err = apiServerMetrics(ctx); err != nil {
		return 1, err
	}
	env.testsBegan = time.Now()
	code := m.Run()

	// tug lab down must leave nothing running and no port listening.
	final, _ := lab.ProbeStatus(ctx, env.dir)
	if out, err := tugCmd(ctx, 2*time.Minute, "lab", "down"); err != nil {
		return 1, fmt.Errorf("tug lab down: %v\n%s", err, out)
	}
	if err := checkNothingLeft(final); err != nil {
		return 1, err
	}
	if err := hostAfter(ctx, before); err != nil {
		return 1, err
	}
	fmt.Fprintln(os.Stderr, "e2e: tug lab down left no process and no listening port")
	return code, nil
}

// checkNothingLeft verifies every process the lab had is gone and every
// port it listened on is free.
func checkNothingLeft(st *lab.Status) error {
	if st == nil {
		return fmt.Errorf("no lab status to check")
	}
	procs := []supervisor.Proc{{PID: st.Supervisor, Start: st.SupervisorStart}}
	for _, c := range st.Components {
		procs = append(procs, c.Proc())
	}
	for _, p := range procs {
		if p.Alive() {
			return fmt.Errorf("pid %d (%s) still running after tug lab down", p.PID, supervisor.Cmdline(p.PID))
		}
	}
	for _, c := range st.Components {
		for name, p := range c.Ports {
			conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second)
			if err == nil {
				conn.Close()
				return fmt.Errorf("%s port %s (%d) still accepts connections after tug lab down", c.Name, name, p)
			}
		}
	}
	return nil
}

// tugCmd runs the tug binary against the test lab.
func tugCmd(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	full := append([]string{}, args...)
	if len(args) > 0 && args[0] == "lab" {
		full = append(full, "--name", env.name, "--state-dir", env.stateRoot, "--repo", env.repo)
	}
	cmd := exec.CommandContext(ctx, env.tug, full...)
	cmd.Dir = env.repo
	cmd.Env = append(os.Environ(), "KUBECONFIG="+env.userKube)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// dumpLogs returns the tails of every component log, for failure reports.
func dumpLogs() string {
	var b bytes.Buffer
	entries, _ := os.ReadDir(env.layout.Logs())
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(env.layout.Logs(), e.Name()))
		fmt.Fprintf(&b, "--- %s ---\n%s\n", e.Name(), tailLines(string(data), 15))
	}
	return b.String()
}

func tailLines(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

func mustJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
