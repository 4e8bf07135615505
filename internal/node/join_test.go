package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tug-gitops/tug/internal/image"
	"github.com/tug-gitops/tug/internal/tools"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startProc runs a program in its own process group, logging to dir, and
// stops it (by pid) when the test ends.
func startProc(t *testing.T, dir, name, bin string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	logf, _ := os.Create(filepath.Join(dir, name+".log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return cmd
}

// A kubelet joins a real API server and runs the shop's backend with the
// chart's securityContext and readiness probe; its log is read through the
// API server (InternalIP, the API server's kubelet client certificate);
// afterwards the host is as before. Needs the lab's kine, kube-apiserver
// and kubelet (see nodeTool).
func TestKubeletJoinsAndRunsTheBackend(t *testing.T) {
	needRealHost(t)
	bins := map[tools.Tool]string{}
	for _, tl := range []tools.Tool{tools.Kine, tools.KubeAPIServer, tools.Kubelet} {
		bins[tl] = nodeTool(t, tl)
	}
	rt := builtRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	before, err := Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	caPath, caKeyPath := testCA(t, work)
	c, err := loadCA(caPath, caKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(work, "pki")
	srvCrt, srvKey, _ := c.issue(pki, cert{name: "apiserver", cn: "kube-apiserver", ips: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")}})
	admCrt, admKey, _ := c.issue(pki, cert{name: "admin", cn: "admin", orgs: []string{"system:masters"}})
	kcCrt, kcKey, _ := c.issue(pki, cert{name: "kubelet-client", cn: KubeletClientUser})
	saKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	saDER, _ := x509.MarshalECPrivateKey(saKey)
	saPub, _ := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	os.WriteFile(filepath.Join(pki, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}), 0o600)
	os.WriteFile(filepath.Join(pki, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}), 0o644)

	kinePort, apiPort := freePort(t), freePort(t)
	env := append(os.Environ(), "HOME="+work)
	startProc(t, work, "kine", bins[tools.Kine], env, "--listen-address=127.0.0.1:"+strconv.Itoa(kinePort), "--endpoint=sqlite://"+filepath.Join(work, "state.db"), "--metrics-bind-address=0")
	startProc(t, work, "kube-apiserver", bins[tools.KubeAPIServer], env,
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(kinePort), "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort), "--cert-dir="+filepath.Join(work, "apiserver"),
		"--tls-cert-file="+srvCrt, "--tls-private-key-file="+srvKey, "--client-ca-file="+caPath,
		"--service-account-key-file="+filepath.Join(pki, "sa.pub"), "--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local", "--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC", "--anonymous-auth=false", "--endpoint-reconciler-type=none",
		"--kubelet-preferred-address-types=InternalIP", "--kubelet-client-certificate="+kcCrt, "--kubelet-client-key="+kcKey)
	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	admKC := filepath.Join(work, "admin.kubeconfig")
	if err := kubeconfig(admKC, server, caPath, admCrt, admKey); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", admKC)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	waitFor(t, ctx, 3*time.Minute, "the API server's /readyz", func() error {
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}, work, "kube-apiserver.log")

	repo, _ := filepath.Abs("../..")
	// The charts' images come from a registry on loopback that mirrors ghcr.io.
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	pushed, err := image.Publish(ctx, repo, filepath.Join(work, "images"), strings.TrimPrefix(reg.URL, "http://"), authn.Anonymous)
	if err != nil {
		t.Fatal(err)
	}
	var want v1.Hash
	for _, p := range pushed {
		if p.Source == "ghcr.io/tug-gitops/backend:0.2.0" {
			want = p.Digest
		}
	}
	next := 0
	n, err := Prepare(ctx, Config{
		Lab: "join-test-" + filepath.Base(work), Dir: filepath.Join(work, "node"), APIServer: server,
		CACert: caPath, CAKey: caKeyPath, ServiceCIDR: "10.96.0.0/16", Kubelet: bins[tools.Kubelet], Runtime: rt,
		RepoRoot: repo, ImageCache: filepath.Join(work, "images"), Mirrors: map[string]string{"ghcr.io": reg.URL},
		Port: func(string) (int, error) { next++; return freePort(t), nil }, Env: env,
	})
	if err != nil {
		t.Fatal(err)
	}
	undone := false
	t.Cleanup(func() {
		if !undone {
			n.Undo(context.Background())
		}
	})
	p := n.Containerd()
	startProc(t, work, "containerd", p.Binary, p.Env, p.Args...)
	waitFor(t, ctx, time.Minute, "containerd", func() error { return p.Ready(ctx) }, work, "containerd.log")
	if err := n.LoadPause(ctx, pauseC(t)); err != nil {
		t.Fatal(err)
	}
	if err := Authorize(ctx, cs); err != nil {
		t.Fatal(err)
	}
	kl := n.Procs()[0]
	kubelet := startProc(t, work, "kubelet", kl.Binary, kl.Env, kl.Args...)
	start := time.Now()
	if err := WaitReady(ctx, cs, 2*time.Minute); err != nil {
		b, _ := os.ReadFile(filepath.Join(work, "kubelet.log"))
		t.Fatalf("%v\n%s", err, tail(string(b), 40))
	}
	t.Logf("node Ready %s after the kubelet started", time.Since(start).Round(10*time.Millisecond))

	// The backend as the chart runs it (no Service account token, nonroot,
	// read-only root, no capabilities, RuntimeDefault seccomp, /readyz).
	no, yes, uid := false, true, int64(65532)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "backend", Namespace: "default"},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: &no,
			SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			NodeName:                     Name,
			Containers: []corev1.Container{{
				Name: "backend", Image: "ghcr.io/tug-gitops/backend:0.2.0", ImagePullPolicy: corev1.PullIfNotPresent,
				Env:            []corev1.EnvVar{{Name: "PORT", Value: "8080"}, {Name: "APP_ENV", Value: "test"}},
				Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http")}}, PeriodSeconds: 1, FailureThreshold: 15},
				SecurityContext: &corev1.SecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid, AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			}},
		},
	}
	// No controller manager here: make the ServiceAccount admission needs.
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	waitFor(t, ctx, 2*time.Minute, "the backend pod Ready", func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "backend", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("phase %s, conditions %v, containers %v", p.Status.Phase, p.Status.Conditions, p.Status.ContainerStatuses)
	}, work, "kubelet.log")
	t.Logf("backend pod Ready %s after it was created", time.Since(created).Round(10*time.Millisecond))
	running, err := cs.CoreV1().Pods("default").Get(ctx, "backend", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if id := running.Status.ContainerStatuses[0].ImageID; !strings.HasSuffix(id, "@"+want.String()) {
		t.Errorf("the backend runs image %s; the mirror serves %s under ghcr.io/tug-gitops/backend:0.2.0", id, want)
	}
	logs, err := cs.CoreV1().Pods("default").GetLogs("backend", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs through the API server: %v", err)
	}
	if !strings.Contains(string(logs), `"version":"0.2.0"`) {
		t.Errorf("the backend's log does not show the stamped version 0.2.0:\n%s", logs)
	}

	// The supervisor goes away without undoing; the ledger alone puts the host back.
	syscall.Kill(-kubelet.Process.Pid, syscall.SIGKILL)
	n.lock.Close()
	undone = true
	undoFromLedgerAsFound(t, ctx, filepath.Join(work, "node"), before)
}

func waitFor(t *testing.T, ctx context.Context, timeout time.Duration, what string, f func() error, dir, log string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			b, _ := os.ReadFile(filepath.Join(dir, log))
			t.Fatalf("%s: not after %s: %v\n%s", what, timeout, err, tail(string(b), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
