package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tug-gitops/tug/internal/bootstrap"
	"github.com/tug-gitops/tug/internal/lab"
	"github.com/tug-gitops/tug/internal/tools"
)

// eventually polls cond until it returns nil or the timeout passes, then
// fails the test with cond's last error and what describe shows.
func eventually(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) error, describe func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		if last = cond(ctx); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			extra := ""
			if describe != nil {
				extra = "\n" + describe()
			}
			t.Fatalf("%s: not true after %s: %v%s", what, timeout, last, extra)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func clientset(t *testing.T) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(toolPath(t, tools.Kubectl), append([]string{"--kubeconfig", env.kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+env.layout.Cache("kubectl-e2e"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestLabKubectlDeploymentBecomesAvailable(t *testing.T) {
	// An image the lab's node has (a real node pulls nothing from off the
	// machine; kwok's fake one runs nothing at all).
	values, err := os.ReadFile(filepath.Join(env.repo, backendDevValues))
	if err != nil {
		t.Fatal(err)
	}
	img := "ghcr.io/tug-gitops/backend:" + tagOf(t, backendDevValues, values)
	kubectl(t, "create", "namespace", "e2e-kubectl")
	kubectl(t, "-n", "e2e-kubectl", "create", "deployment", "web", "--image="+img, "--replicas=2")
	cs := clientset(t)
	eventually(t, 60*time.Second, "Deployment web Available", func(ctx context.Context) error {
		d, err := cs.AppsV1().Deployments("e2e-kubectl").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == "True" && d.Status.AvailableReplicas == 2 {
				return nil
			}
		}
		return fmt.Errorf("status %+v", d.Status)
	}, func() string { return kubectl(t, "-n", "e2e-kubectl", "get", "deploy,rs,pods", "-o", "wide") })
}

func TestLabUpdatedUserKubeconfig(t *testing.T) {
	cfg, err := clientcmd.LoadFromFile(env.userKube)
	if err != nil {
		t.Fatal(err)
	}
	want := lab.ContextName(env.name)
	if cfg.CurrentContext != want {
		t.Fatalf("current context %q, want %q", cfg.CurrentContext, want)
	}
	if _, ok := cfg.Contexts[want]; !ok {
		t.Fatalf("no context %q in %s", want, env.userKube)
	}
}

func TestLabNoSecretInOutput(t *testing.T) {
	cs := clientset(t)
	s, err := cs.CoreV1().Secrets(bootstrap.Namespace).Get(context.Background(), bootstrap.CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	envOut, err := tugCmd(context.Background(), time.Minute, "lab", "env")
	if err != nil {
		t.Fatalf("tug lab env: %v\n%s", err, envOut)
	}
	for key, v := range s.Data {
		if len(v) > 0 && (strings.Contains(env.upOutput, string(v)) || strings.Contains(envOut, string(v))) {
			t.Errorf("credential %s appears in tug lab up/env output", key)
		}
	}
	logs, _ := os.ReadFile(env.layout.SupervisorLog())
	for key, v := range s.Data {
		if len(v) > 0 && strings.Contains(string(logs), string(v)) {
			t.Errorf("credential %s appears in the supervisor log", key)
		}
	}
}

// argoHTTP is a client that trusts only the lab's CA.
func argoHTTP(t *testing.T) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(env.layout.CACert())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func TestArgoCDAPIRequiresAuthentication(t *testing.T) {
	base := env.status.Endpoints["argocd"]
	for _, path := range []string{"/api/v1/applications", "/api/v1/projects", "/api/v1/session/userinfo?x=1"} {
		resp, err := argoHTTP(t).Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if path == "/api/v1/session/userinfo?x=1" {
			continue // answers 200 with loggedIn=false, by design
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %s, want 401", path, resp.Status)
		}
	}
}

func operatorPassword(t *testing.T) string {
	t.Helper()
	s, err := clientset(t).CoreV1().Secrets(bootstrap.Namespace).Get(context.Background(), bootstrap.CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(s.Data[bootstrap.CredOperatorPassword])
}

// argocdCLI runs the real argocd CLI built for the lab, with its own config
// file and the lab's CA trusted.
func argocdCLI(t *testing.T, configDir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(toolPath(t, tools.ArgoCD), append(args, "--config", filepath.Join(configDir, "config"))...)
	cmd.Env = append(os.Environ(), "ARGOCD_BINARY_NAME=argocd", "SSL_CERT_FILE="+env.layout.CACert(), "HOME="+configDir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestArgoCDCLILoginAsOperator(t *testing.T) {
	server := strings.TrimPrefix(env.status.Endpoints["argocd"], "https://")
	dir := t.TempDir()
	out, err := argocdCLI(t, dir, "login", server, "--username", "operator", "--password", operatorPassword(t))
	if err != nil {
		t.Fatalf("argocd login as operator: %v\n%s", err, out)
	}
	out, err = argocdCLI(t, dir, "app", "list", "-o", "name")
	if err != nil {
		t.Fatalf("argocd app list: %v\n%s", err, out)
	}
	for _, app := range []string{"frontend-dev", "frontend-prod", "backend-dev", "backend-prod", "root"} {
		if !strings.Contains(out, app) {
			t.Errorf("argocd app list as operator lacks %s:\n%s", app, out)
		}
	}
	bad, err := argocdCLI(t, t.TempDir(), "login", server, "--username", "admin", "--password", "password")
	if err == nil {
		t.Fatalf("argocd login as admin succeeded; the built-in admin must be disabled:\n%s", bad)
	}
}

func TestLabRestartsKilledRepoServer(t *testing.T) {
	ctx := context.Background()
	before := component(t, "argocd-repo-server")
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "repo-server restarted and healthy", func(ctx context.Context) error {
		st, err := lab.ProbeStatus(ctx, env.dir)
		if err != nil {
			return err
		}
		for _, c := range st.Components {
			if c.Name == "argocd-repo-server" {
				if c.PID == before.PID || c.Restarts <= before.Restarts || !c.Healthy {
					return fmt.Errorf("pid %d restarts %d healthy %v", c.PID, c.Restarts, c.Healthy)
				}
				return nil
			}
		}
		return fmt.Errorf("no argocd-repo-server in status")
	}, func() string { return mustJSON(component(t, "argocd-repo-server")) })
	_ = ctx
}

func component(t *testing.T, name string) lab.ComponentStatus {
	t.Helper()
	st, err := lab.ProbeStatus(context.Background(), env.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Components {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no component %s in lab status", name)
	return lab.ComponentStatus{}
}

// toolPath returns a third-party binary, built from its pinned module.
func toolPath(t *testing.T, tool tools.Tool) string {
	t.Helper()
	mods, err := tools.FindModulesDir(env.repo)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := (&tools.Builder{ModulesDir: mods}).Ensure(context.Background(), tool)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// An API server sets up a custom resource's storage on the first request
// for it and refuses lists with 429 until its watch cache is filled;
// client-go then waits a second. The lab opens the storage of Argo CD's
// resources before Argo CD starts (kube.Client.OpenCRDStorage), so no
// Argo CD component should have been told to come back later. The metrics
// are the ones read right after lab up: an API server restarted by a later
// test refuses the reconnecting components while its caches fill.
func TestArgoCDListsWereNotThrottledAtStart(t *testing.T) {
	var refused []string
	for _, line := range strings.Split(env.startMetrics, "\n") {
		if strings.HasPrefix(line, "apiserver_request_total{") && strings.Contains(line, `code="429"`) && strings.Contains(line, `group="argoproj.io"`) {
			refused = append(refused, line)
		}
	}
	if len(refused) > 0 {
		t.Fatalf("requests for Argo CD resources refused with 429 (storage not ready):\n%s", strings.Join(refused, "\n"))
	}
}

// apiServerMetrics reads the API server's /metrics.
func apiServerMetrics(ctx context.Context) (string, error) {
	cs, err := kubernetes.NewForConfig(env.cfg)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("API server metrics: %w", err)
	}
	return string(b), nil
}
