package e2e

// The product on a real node (TUG_E2E_NODE=real): the shop's pods run in
// containers, the frontends answer on the host, promotion changes what
// really runs, the kubelet restarts a killed container, pods cannot send
// anything off the host, and `tug lab down` leaves the host as it found it.
// On a fake node (TUG_E2E_NODE=fake, or a host that cannot run a real one)
// these tests skip and say why.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tug-gitops/tug/internal/image"
	"github.com/tug-gitops/tug/internal/lab"
	"github.com/tug-gitops/tug/internal/node"
	"github.com/tug-gitops/tug/internal/tools"
)

// e2eNode is the node kind the suite's lab runs: TUG_E2E_NODE, else what
// `tug lab up` chooses (real where the host allows it).
func e2eNode() string {
	if k := os.Getenv("TUG_E2E_NODE"); k != "" {
		return k
	}
	return lab.NodeAuto
}

// hostBefore snapshots what a real node may change, when it will run one.
func hostBefore(ctx context.Context) (*node.HostSnapshot, error) {
	if e2eNode() == lab.NodeFake || node.Check() != nil || node.HostTaken() {
		return nil, nil
	}
	s, err := node.Snapshot(ctx)
	return &s, err
}

// hostAfter fails when `tug lab down` left the host different.
func hostAfter(ctx context.Context, before *node.HostSnapshot) error {
	if before == nil {
		return nil
	}
	after, err := node.Snapshot(ctx)
	if err != nil {
		return err
	}
	if d := before.Diff(after); len(d) > 0 {
		return fmt.Errorf("tug lab down left the host changed:\n%s", strings.Join(d, "\n"))
	}
	fmt.Fprintln(os.Stderr, "e2e: the host after tug lab down is as before tug lab up (links, nftables, sysctls, mounts, cgroups, paths)")
	return nil
}

func needRealNode(t *testing.T) {
	t.Helper()
	if env.status.Node != lab.NodeReal {
		t.Skipf("the lab runs a fake node (%s); on a host that can, TUG_E2E_NODE=real or auto runs these tests", env.status.NodeReason)
	}
}

var (
	frontendVersionRE = regexp.MustCompile(`id="frontend-version">([^<]*)<`)
	backendVersionRE  = regexp.MustCompile(`id="backend-version"[^>]*>([^<]*)<`)
)

// shopPage fetches an environment's frontend from the host, through the
// lab's loopback URL for it, and returns the two versions it shows.
func shopPage(ctx context.Context, namespace string) (frontend, backend, page string, err error) {
	url := env.status.Endpoints["frontend/"+namespace]
	if url == "" {
		return "", "", "", fmt.Errorf("the lab serves no frontend for %s (endpoints %v)", namespace, env.status.Endpoints)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return "", "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	page = string(body)
	f, b := frontendVersionRE.FindStringSubmatch(page), backendVersionRE.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || f == nil || b == nil {
		return "", "", page, fmt.Errorf("%s answered %s:\n%s", url, resp.Status, page)
	}
	return f[1], b[1], page, nil
}

// expectShop waits until namespace's page shows the wanted versions.
func expectShop(t *testing.T, timeout time.Duration, namespace, frontend, backend string) {
	t.Helper()
	var last string
	eventually(t, timeout, namespace+" frontend page shows frontend "+frontend+" and backend "+backend, func(ctx context.Context) error {
		f, b, page, err := shopPage(ctx, namespace)
		last = page
		if err != nil {
			return err
		}
		if f != frontend || b != backend {
			return fmt.Errorf("shows frontend %s, backend %s", f, b)
		}
		return nil
	}, func() string { return last })
}

func TestRealNodeShopPagesShowVersions(t *testing.T) {
	needRealNode(t)
	for _, envName := range []string{"dev", "prod"} {
		files := forgeFiles(t, "charts/frontend/values-"+envName+".yaml", "charts/backend/values-"+envName+".yaml")
		fe := tagOf(t, "frontend", files["charts/frontend/values-"+envName+".yaml"])
		be := tagOf(t, "backend", files["charts/backend/values-"+envName+".yaml"])
		// The versions are stamped into the binaries the images hold, and
		// the backend's comes through its Service, found by DNS.
		expectShop(t, time.Minute, "shop-"+envName, fe, be)
	}
}

func TestRealNodePromotionChangesWhatProdRuns(t *testing.T) {
	needRealNode(t)
	restorePromotionState(t)
	files := forgeFiles(t, backendDevValues, backendProdValues, "charts/frontend/values-prod.yaml")
	devTag, prodTag := tagOf(t, backendDevValues, files[backendDevValues]), tagOf(t, backendProdValues, files[backendProdValues])
	fe := tagOf(t, "frontend", files["charts/frontend/values-prod.yaml"])
	if devTag == prodTag {
		t.Fatalf("dev and prod both run backend %s; the test needs two tags", devTag)
	}
	expectShop(t, time.Minute, "shop-prod", fe, prodTag)
	run := mustPromote(t, "backend", "--from", "dev", "--to", "prod")
	merged := approveAndMerge(t, run.res.PR.Number)
	mergedAt := time.Now()
	// As a user does after a merge (promote --merge --wait does the same):
	// tug wait asks Argo CD to refresh instead of waiting for its poll, and
	// returns once the rollout is Healthy at the merge.
	mustTugWait(t, 3*time.Minute, merged.MergeCommit, "backend-prod")
	waited := time.Since(mergedAt)
	expectShop(t, time.Minute, "shop-prod", fe, devTag)
	t.Logf("merge %s → tug wait returned after %s; the prod page shows backend %s after %s", merged.MergeCommit[:12], waited.Round(10*time.Millisecond), devTag, time.Since(mergedAt).Round(10*time.Millisecond))
}

func TestRealNodeKubectlLogsAreJSON(t *testing.T) {
	needRealNode(t)
	// Through the API server, which reaches the kubelet by its InternalIP
	// with its own client certificate.
	out := kubectl(t, "logs", "-n", "shop-dev", "deployment/backend", "--tail=20")
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q (%v)\n%s", line, err, out)
		}
		if rec["service"] != "backend" || rec["msg"] == nil {
			t.Errorf("log line without service=backend and msg: %q", line)
		}
		lines++
	}
	if lines == 0 {
		t.Fatalf("kubectl logs printed nothing")
	}
}

// backendPod is shop-dev's backend pod and the host pid of its container's
// process (found by the pod's cgroup and the program's name).
func backendPod(t *testing.T) (*corev1.Pod, int) {
	t.Helper()
	ctx := context.Background()
	pods, err := clientset(t).CoreV1().Pods("shop-dev").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=backend"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("no backend pod in shop-dev: %v", err)
	}
	pod := &pods.Items[0]
	uid := string(pod.UID)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cg, _ := os.ReadFile("/proc/" + e.Name() + "/cgroup")
		exe, _ := os.Readlink("/proc/" + e.Name() + "/exe")
		if (strings.Contains(string(cg), uid) || strings.Contains(string(cg), strings.ReplaceAll(uid, "-", "_"))) && filepath.Base(exe) == "backend" {
			return pod, pid
		}
	}
	t.Fatalf("no process of pod %s (uid %s) runs /backend", pod.Name, uid)
	return nil, 0
}

// The charts ask for seccompProfile RuntimeDefault: the runc built from
// lab/tools/runtime (with libseccomp) must really install a filter, mode 2
// in the container process's /proc status, not leave it unconfined.
func TestRealNodeContainersRunUnderSeccomp(t *testing.T) {
	needRealNode(t)
	_, pid := backendPod(t)
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Seccomp:\s*(\d+)$`).FindStringSubmatch(string(status))
	if m == nil || m[1] != "2" {
		t.Fatalf("the backend (pid %d) runs without a seccomp filter (want Seccomp: 2):\n%s", pid, status)
	}
}

func TestRealNodeKubeletRestartsKilledContainer(t *testing.T) {
	needRealNode(t)
	pod, pid := backendPod(t)
	restarts := pod.Status.ContainerStatuses[0].RestartCount
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cs := clientset(t)
	eventually(t, 2*time.Minute, "the kubelet restarts the killed backend and it is Ready", func(ctx context.Context) error {
		p, err := cs.CoreV1().Pods("shop-dev").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		st := p.Status.ContainerStatuses[0]
		if st.RestartCount <= restarts || !st.Ready {
			return fmt.Errorf("restarts %d (was %d), ready %v", st.RestartCount, restarts, st.Ready)
		}
		return nil
	}, nil)
	mustTugWait(t, 2*time.Minute, "", "backend-dev")
}

// inNetns runs f on a thread inside the network namespace at nsPath.
// Sockets f creates stay in that namespace.
func inNetns(nsPath string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is not unlocked: if switching back failed it must
		// die with the goroutine rather than serve others.
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", nsPath, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// TestRealNodePodsCannotLeaveTheHost proves, without sending anything off
// the machine, that pods reach nothing beyond the host: no masquerading,
// the node's own drop rule, the pod's routes, and a connection from a pod
// to a stand-in "outside" host — a network namespace this test creates,
// routed from the host like any other network — that must not get through,
// while the same connection from the host does.
func TestRealNodePodsCannotLeaveTheHost(t *testing.T) {
	needRealNode(t)
	n := node.NetworkFor(env.name)
	ruleset, err := exec.Command("nft", "list", "ruleset").Output()
	if err != nil {
		t.Fatal(err)
	}
	// kube-proxy marks traffic to a Service from outside the pod network
	// (saddr != the pods' subnet: the host reaching a ClusterIP) for
	// masquerading; that is the host's traffic, not the pods'.
	hostToService := "saddr != " + n.Subnet.String()
	for _, line := range strings.Split(string(ruleset), "\n") {
		if strings.Contains(line, "masquerade") && !strings.Contains(line, hostToService) && (strings.Contains(line, n.Bridge) || strings.Contains(line, n.Subnet.String())) {
			t.Errorf("the pod network is masqueraded: %s", strings.TrimSpace(line))
		}
	}
	if !strings.Contains(string(ruleset), `iifname "`+n.Bridge+`" oifname != "`+n.Bridge+`"`) {
		t.Errorf("no rule drops what pods send to other interfaces:\n%s", ruleset)
	}
	_, pid := backendPod(t)
	routes, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/route", pid))
	if got := strings.Count(strings.TrimSpace(string(routes)), "\n"); got != 2 {
		t.Errorf("the pod has %d routes, want the default via the node and its subnet:\n%s", got, routes)
	}

	// The stand-in outside host: a namespace held by a sleep this test
	// starts (and stops, by pid), joined to the host by a veth pair.
	holder := exec.Command("unshare", "--net", "sleep", "600")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	nsPath := fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)
	hostIf, nsIf := fmt.Sprintf("tugout%dh", os.Getpid()%10000), fmt.Sprintf("tugout%dn", os.Getpid()%10000)
	ipRun := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ipRun("link", "add", hostIf, "type", "veth", "peer", "name", nsIf)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hostIf).Run() })
	ipRun("link", "set", nsIf, "netns", strconv.Itoa(holder.Process.Pid))
	ipRun("addr", "add", "10.253.77.1/30", "dev", hostIf)
	ipRun("link", "set", hostIf, "up")
	nsRun := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("nsenter", append([]string{"--net=" + nsPath, "ip"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s in the outside namespace: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	nsRun("addr", "add", "10.253.77.2/30", "dev", nsIf)
	nsRun("link", "set", nsIf, "up")
	nsRun("link", "set", "lo", "up")
	// Replies to a pod would route back through the host: only the node's
	// rules stand between the pods and this "outside".
	nsRun("route", "add", "default", "via", "10.253.77.1")

	var ln net.Listener
	if err := inNetns(nsPath, func() (err error) { ln, err = net.Listen("tcp", "10.253.77.2:8099"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan string, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	// From the host, the outside answers: the stand-in works.
	c, err := net.DialTimeout("tcp", "10.253.77.2:8099", 3*time.Second)
	if err != nil {
		t.Fatalf("the stand-in outside host does not answer the host: %v", err)
	}
	c.Close()
	<-accepted
	// From the pod, nothing gets through.
	err = inNetns(fmt.Sprintf("/proc/%d/ns/net", pid), func() error {
		c, err := net.DialTimeout("tcp", "10.253.77.2:8099", 3*time.Second)
		if err == nil {
			c.Close()
			return errors.New("connected")
		}
		t.Logf("from the pod: %v", err)
		return nil
	})
	if err != nil {
		t.Fatalf("a pod reached the outside host: %v", err)
	}
	select {
	case from := <-accepted:
		t.Fatalf("the outside host accepted a connection from %s", from)
	case <-time.After(500 * time.Millisecond):
	}
}

// TestRealNodeBrokenImageFailsWait deploys to dev an image whose program
// cannot start: the container never runs, the rollout stays in progress
// (the old pod keeps serving: maxUnavailable is 0), and `tug wait` fails
// saying so. Putting the tag back heals it.
func TestRealNodeBrokenImageFailsWait(t *testing.T) {
	needRealNode(t)
	const tag = "0.0.0-broken"
	// No /backend in it: runc cannot start the entrypoint.
	img, err := image.FromFiles([]image.File{{Path: "etc/", Mode: 0o755}, {Path: "tmp/", Mode: 0o1777}}, image.Config("backend", 8080))
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "broken.tar")
	if err := image.WriteArchive(archive, img, []string{"ghcr.io/tug-gitops/backend:" + tag}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(toolPath(t, tools.Ctr), "--address", filepath.Join(env.layout.Node(), "containerd.sock"), "-n", "k8s.io", "images", "import", archive).CombinedOutput(); err != nil {
		t.Fatalf("import the broken image: %v\n%s", err, out)
	}
	restorePromotionState(t)
	cur := tagOf(t, backendDevValues, forgeFile(t, backendDevValues))
	sha, _ := forgeReplace(t, backendDevValues, `tag: "`+cur+`"`, `tag: "`+tag+`"`, "e2e: a backend image that cannot start")
	out, err := tugWait(t, 45*time.Second, sha, "backend-dev")
	if err == nil {
		t.Fatalf("tug wait succeeded with a backend that cannot start:\n%s", out)
	}
	if !strings.Contains(out, "Progressing") && !strings.Contains(out, "Degraded") {
		t.Errorf("tug wait's failure does not say the app is Progressing or Degraded:\n%s", out)
	}
	t.Logf("tug wait failed as it should:\n%s", tailLines(out, 8))
	pods, err := clientset(t).CoreV1().Pods("shop-dev").List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=backend"})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			if c.Image == "ghcr.io/tug-gitops/backend:"+tag && c.State.Waiting != nil {
				reasons = append(reasons, c.State.Waiting.Reason+": "+c.State.Waiting.Message)
			}
		}
	}
	if len(reasons) == 0 {
		t.Errorf("no container of the broken image is waiting with a reason; pods: %s", mustJSON(pods.Items))
	}
	t.Logf("the kubelet says: %s", strings.Join(reasons, "; "))
}

// A frontend Service deleted and recreated by Argo CD's self-heal gets a
// new ClusterIP; the lab's URL for the shop keeps answering.
func TestRealNodeShopURLFollowsARecreatedService(t *testing.T) {
	needRealNode(t)
	ctx := context.Background()
	cs := clientset(t)
	svcs, err := cs.CoreV1().Services("shop-dev").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=frontend"})
	if err != nil || len(svcs.Items) != 1 {
		t.Fatalf("the frontend Service of shop-dev: %v %v", err, svcs)
	}
	old := svcs.Items[0]
	if err := cs.CoreV1().Services("shop-dev").Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var seen string
	eventually(t, 2*time.Minute, "Argo CD recreates Service "+old.Name+" with a new address", func(ctx context.Context) error {
		s, err := cs.CoreV1().Services("shop-dev").Get(ctx, old.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		seen = s.Spec.ClusterIP
		if s.UID == old.UID || s.Spec.ClusterIP == old.Spec.ClusterIP {
			return fmt.Errorf("still the old Service (%s)", s.Spec.ClusterIP)
		}
		return nil
	}, func() string { return "ClusterIP " + seen })
	t.Logf("Service %s: %s → %s", old.Name, old.Spec.ClusterIP, seen)
	eventually(t, time.Minute, "the shop-dev URL answers through the new Service", func(ctx context.Context) error {
		_, _, _, err := shopPage(ctx, "shop-dev")
		return err
	}, func() string { return "" })
}
