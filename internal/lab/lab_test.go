package lab

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/tools"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/tug-gitops/tug/internal/bootstrap"
)

func TestPKIIssuesVerifiableCertsAndReusesThem(t *testing.T) {
	dir := t.TempDir()
	p, err := loadOrCreatePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := identity{name: "apiserver", cn: "kube-apiserver", server: true}
	if err := p.issue(id); err != nil {
		t.Fatal(err)
	}
	cert := readCert(t, p.certPath("apiserver"))
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "kubernetes.default.svc"}); err != nil {
		t.Fatalf("serving cert does not verify for kubernetes.default.svc: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Fatalf("serving cert does not verify for 127.0.0.1: %v", err)
	}
	if st, _ := os.Stat(p.keyPath("apiserver")); st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, want 0600", st.Mode().Perm())
	}
	// A second start on the same state keeps the CA and the certificate.
	p2, err := loadOrCreatePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.issue(id); err != nil {
		t.Fatal(err)
	}
	if !p2.caCert.Equal(p.caCert) || !readCert(t, p2.certPath("apiserver")).Equal(cert) {
		t.Fatal("restart replaced the CA or the certificate")
	}
}

func TestPKIRejectsDamagedCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadOrCreatePKI(dir); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "ca.key"), []byte("garbage"), 0o600)
	_, err := loadOrCreatePKI(dir)
	if err == nil || !strings.Contains(err.Error(), "tug lab down --delete") {
		t.Fatalf("damaged CA: got %v, want an error saying how to recover", err)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWorkloadEnvResolvesLikeTheKubelet(t *testing.T) {
	c := corev1.Container{Env: []corev1.EnvVar{
		{Name: "PLAIN", Value: "v"},
		{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "argocd-cmd-params-cm"}, Key: "server.insecure", Optional: ptr.To(true)}}},
		{Name: "MISSING_OPTIONAL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "argocd-cmd-params-cm"}, Key: "nope", Optional: ptr.To(true)}}},
		{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "argocd-redis"}, Key: "auth"}}},
		{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
	}}
	cms := map[string]map[string]string{"argocd-cmd-params-cm": {"server.insecure": "false"}}
	secret := func(name, key string) (string, bool) { return "pw", name == "argocd-redis" && key == "auth" }
	env, err := workloadEnv(c, cms, secret)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(env, " ")
	want := "PLAIN=v FROM_CM=false SECRET=pw NS=argocd"
	if got != want {
		t.Fatalf("env = %q, want %q", got, want)
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "REQUIRED", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "x"}, Key: "y"}}})
	if _, err := workloadEnv(c, cms, secret); err == nil {
		t.Fatal("a missing required configmap key must be an error")
	}
}

// The lab runs the upstream workloads it finds in infra/argocd; each must
// be there, with its environment resolvable from the rendered ConfigMaps.
func TestInfraArgoCDHasTheWorkloadsTheLabRuns(t *testing.T) {
	objs, err := bootstrap.Render(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, o := range objs {
		if bootstrap.IsWorkload(o) {
			found[o.GetName()] = true
		}
	}
	for _, name := range argoComponents {
		if !found[name] {
			t.Errorf("infra/argocd renders no workload %s", name)
		}
	}
	// The lab runs what a cluster would: not what the install scales to zero.
	early := &argoEarly{objs: objs}
	var runs []string
	for _, name := range argoComponents {
		if early.runs(name) {
			runs = append(runs, name)
		}
	}
	if want := []string{"argocd-repo-server", "argocd-server", "argocd-application-controller"}; !slices.Equal(runs, want) {
		t.Errorf("the lab runs %v, want %v", runs, want)
	}
}

// The snapshot holds what is committed (not the work tree's edits), with the
// repository URL replaced only in tug.yaml and infra/gitops YAML, file modes
// kept, and nothing written to the working repository.
func TestSnapshotRetargetsOnlyTheRepoURLOfCommittedFiles(t *testing.T) {
	repo := t.TempDir()
	from, to := "https://github.com/tug-gitops/tug.git", "http://127.0.0.1:3000/tug-gitops/tug.git"
	write := func(rel, data string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(repo, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, rel), []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git(repo, "init", "-q", "-b", "main")
	write("tug.yaml", "repoURL: "+from+"\n", 0o644)
	write("infra/gitops/apps/a.yaml", "# keep me\nspec:\n  source:\n    repoURL: "+from+" # comment\n", 0o644)
	write("infra/gitops/hook.yaml", "url: "+from+"\n", 0o755)
	write("infra/gitops/notes.txt", from+"\n", 0o644)
	write("charts/x/values.yaml", "url: "+from+"\n", 0o644)
	git(repo, "add", "-A")
	git(repo, "commit", "-q", "-m", "init")
	write("infra/gitops/apps/a.yaml", "uncommitted\n", 0o644)
	before := git(repo, "count-objects")

	scratch := filepath.Join(t.TempDir(), "snap")
	snap, err := makeSnapshot(context.Background(), repo, scratch, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(snap.retargeted, ","); got != "infra/gitops/apps/a.yaml,infra/gitops/hook.yaml,tug.yaml" {
		t.Errorf("retargeted %s", got)
	}
	show := func(p string) string { return git(scratch, "--git-dir", scratch, "show", snap.commit+":"+p) + "\n" }
	if a := show("infra/gitops/apps/a.yaml"); a != "# keep me\nspec:\n  source:\n    repoURL: "+to+" # comment\n" {
		t.Errorf("a.yaml = %q", a)
	}
	for _, p := range []string{"charts/x/values.yaml", "infra/gitops/notes.txt"} {
		if !strings.Contains(show(p), from) {
			t.Errorf("%s changed: only tug.yaml and infra/gitops YAML may", p)
		}
	}
	if mode := git(scratch, "--git-dir", scratch, "ls-tree", snap.commit, "infra/gitops/hook.yaml"); !strings.HasPrefix(mode, "100755") {
		t.Errorf("hook.yaml lost its mode: %s", mode)
	}
	if after := git(repo, "count-objects"); after != before {
		t.Errorf("the working repository was written to: %s, then %s", before, after)
	}
	if _, err := makeSnapshot(context.Background(), t.TempDir(), filepath.Join(t.TempDir(), "s"), from, to); err == nil || !strings.Contains(err.Error(), "not a git repository with a commit") {
		t.Errorf("no repository: err = %v", err)
	}
}

func TestStateDirRejectsBadNames(t *testing.T) {
	for _, bad := range []string{"", "../x", "Upper", "a/b", strings.Repeat("a", 40)} {
		if _, err := StateDir("/tmp", bad); err == nil {
			t.Errorf("StateDir(%q) accepted", bad)
		}
	}
	if d, err := StateDir("/tmp/s", "e2e-1"); err != nil || d != "/tmp/s/e2e-1" {
		t.Fatalf("StateDir = %q, %v", d, err)
	}
}

// A relative --state-dir names the same folder whatever folder the lab's
// programs later run in.
func TestStateDirIsAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	wd, _ := os.Getwd()
	d, err := StateDir("state", "default")
	if err != nil || d != filepath.Join(wd, "state", "default") {
		t.Fatalf("StateDir(\"state\", \"default\") = %q, %v; want it under %s", d, err, wd)
	}
}

// A state folder whose Unix sockets could not be made is refused before
// anything is written or started, with what to do.
func TestLaunchRefusesAStateFolderTooLongForSockets(t *testing.T) {
	root := filepath.Join(t.TempDir(), strings.Repeat("x", maxSocketPath))
	_, err := Launch(context.Background(), LaunchOptions{Name: "default", StateRoot: root, Progress: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "use a shorter --state-dir") {
		t.Fatalf("Launch with a %d-character state folder: %v, want an error naming --state-dir", len(root), err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("Launch refused the state folder but made %s", root)
	}
	// The default state folder of a user called "ubuntu" is allowed.
	if l, _ := LayoutOf("/home/ubuntu/.local/state/tug/lab", "default"); l.CheckSocketPaths(NodeReal) != nil {
		t.Errorf("the default state folder is refused: %v", l.CheckSocketPaths(NodeReal))
	}
	// A fake node has no kubelet: its limit is the repo-server's socket.
	long := "/" + strings.Repeat("x", 70)
	if l, _ := LayoutOf(long, "default"); l.CheckSocketPaths(NodeFake) != nil || l.CheckSocketPaths(NodeReal) == nil {
		t.Errorf("a %d-character state folder: fake node %v (want allowed), real node %v (want refused)", len(l.Dir), l.CheckSocketPaths(NodeFake), l.CheckSocketPaths(NodeReal))
	}
}

func TestPortsAreRememberedWhileFree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ports.json")
	p, _ := loadPorts(path)
	a, err := p.get("apiserver")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.save(path); err != nil {
		t.Fatal(err)
	}
	q, err := loadPorts(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := q.get("apiserver"); b != a {
		t.Fatalf("port changed across restarts: %d then %d", a, b)
	}
}

func TestPortsAreNeverGivenTwice(t *testing.T) {
	// The kernel offers 4000 twice, as it can when the first holder has not
	// bound it yet.
	offers := []int{4000, 4000, 4001}
	p := &ports{m: map[string]int{}, pick: func() (int, error) {
		port := offers[0]
		offers = offers[1:]
		return port, nil
	}}
	a, _ := p.get("controller-manager")
	b, err := p.get("argocd-repo-server/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if a != 4000 || b != 4001 {
		t.Fatalf("ports %d and %d, want 4000 and 4001", a, b)
	}
	// A remembered port now listed under another key is not reused either.
	q := &ports{m: map[string]int{"a": 4002, "b": 4002}, pick: func() (int, error) { return 4003, nil }}
	if got, _ := q.get("b"); got != 4003 {
		t.Fatalf("duplicate remembered port kept: %d", got)
	}
}

// New ports come from below the kernel's ephemeral range, where no
// outgoing connection is ever given one as its local port.
func TestNewPortsAreOutsideTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	if low < listenPorts.hi {
		t.Skipf("the ephemeral range starts at %d, inside %v: the kernel picks", low, listenPorts)
	}
	p := &ports{m: map[string]int{}}
	for i := range 20 {
		port, err := p.get(fmt.Sprint("component-", i))
		if err != nil {
			t.Fatal(err)
		}
		if port < listenPorts.lo || port >= listenPorts.hi || !portFree(port) {
			t.Fatalf("port %d: want a free one in [%d, %d), below the ephemeral range from %d", port, listenPorts.lo, listenPorts.hi, low)
		}
	}
}

// A port can be taken between being found free and being bound; a
// listener whose address nobody has recorded yet moves to a new port.
func TestPortTakenBeforeBindingIsReplaced(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().(*net.TCPAddr).Port
	offers := []int{busy}
	p := &ports{m: map[string]int{}, pick: func() (int, error) {
		if len(offers) > 0 {
			port := offers[0]
			offers = offers[1:]
			return port, nil
		}
		return kernelPort()
	}}
	var tried []int
	port, err := p.listen("redis", func(port int) error {
		tried = append(tried, port)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return l.Close()
	})
	if err != nil {
		t.Fatalf("tried %v: %v", tried, err)
	}
	if len(tried) != 2 || tried[0] != busy || port == busy || p.lookup("redis") != port {
		t.Fatalf("tried %v, got %d, remembered %d; want the taken %d, then another, remembered", tried, port, p.lookup("redis"), busy)
	}

	// Any other failure is the start's own and is not retried.
	calls := 0
	if _, err := p.listen("other", func(int) error { calls++; return errors.New("bad config") }); err == nil || calls != 1 {
		t.Fatalf("err %v after %d calls, want the error after one", err, calls)
	}
}

func TestEmbeddedRedisExpiresKeys(t *testing.T) {
	t.Setenv("TUG_LAB_EMBEDDED_REDIS", "1")
	dir := t.TempDir()
	l := &Lab{dir: dir, layout: Layout{Dir: dir}, opts: Options{Log: slog.Default()}}
	port, err := (&ports{m: map[string]int{}}).get("redis")
	if err != nil {
		t.Fatal(err)
	}
	kind, err := l.startRedis(context.Background(), port, "pw")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range l.closers {
			c(context.Background())
		}
	}()
	if kind != redisEmbedded {
		t.Fatalf("kind %q", kind)
	}
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	send := func(args ...string) string {
		fmt.Fprintf(conn, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(conn, "$%d\r\n%s\r\n", len(a), a)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "$") && !strings.HasPrefix(line, "$-1") {
			v, _ := r.ReadString('\n')
			return strings.TrimSpace(v)
		}
		return strings.TrimSpace(line)
	}
	if got := send("GET", "k"); !strings.Contains(got, "NOAUTH") {
		t.Fatalf("unauthenticated GET answered %q; the password must be required", got)
	}
	send("AUTH", "pw")
	send("SET", "k", "v", "PX", "300")
	if got := send("GET", "k"); got != "v" {
		t.Fatalf("GET right after SET = %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for send("GET", "k") != "$-1" {
		if time.Now().After(deadline) {
			t.Fatal("a key with a 300 ms TTL still exists after 5 s: the embedded Redis does not expire keys")
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
}

// A ~/.kube/config that is a symlink (into a dotfiles repository, say)
// stays one: the file it points at gets the lab's context.
func TestKubeconfigMergeWritesThroughASymlink(t *testing.T) {
	dir := t.TempDir()
	labKube := filepath.Join(dir, "lab.yaml")
	if err := writeKubeconfig(labKube, "https://127.0.0.1:6443", fakeFile(t, dir, "ca.crt"), "", "", "token", "default", "lab"); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "dotfiles", "kubeconfig")
	os.MkdirAll(filepath.Dir(target), 0o700)
	os.WriteFile(target, []byte("apiVersion: v1\nkind: Config\ncurrent-context: mine\ncontexts:\n- name: mine\n  context: {cluster: mine, user: mine}\nclusters:\n- name: mine\n  cluster: {server: https://example.invalid}\nusers:\n- name: mine\n  user: {token: t}\n"), 0o600)
	link := filepath.Join(dir, "home", ".kube", "config")
	os.MkdirAll(filepath.Dir(link), 0o700)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := mergeIntoUserKubeconfig(link, labKube, "tug-lab", true); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s is no longer a symlink (%v)", link, err)
	}
	data, _ := os.ReadFile(target)
	if !strings.Contains(string(data), "tug-lab") || !strings.Contains(string(data), "mine") {
		t.Fatalf("the link's target lacks the lab's or the user's context:\n%s", data)
	}
	if _, err := os.Stat(target + ".lock"); err == nil {
		t.Fatal("the lock file was left behind")
	}
	if err := removeFromUserKubeconfig(link, "tug-lab"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("removing the context replaced the symlink")
	}
}

// A kubeconfig that the lab's `up` created is gone after its context is
// removed, with the folder it made for it; one that holds anything else
// stays, and so does a folder that holds anything else.
func TestRemovingTheLabsContextRemovesTheFileItCreated(t *testing.T) {
	dir := t.TempDir()
	labKube := filepath.Join(dir, "lab.yaml")
	if err := writeKubeconfig(labKube, "https://127.0.0.1:6443", fakeFile(t, dir, "ca.crt"), "", "", "token", "default", "lab"); err != nil {
		t.Fatal(err)
	}
	user := filepath.Join(dir, "home", ".kube", "config")
	if err := mergeIntoUserKubeconfig(user, labKube, "tug-lab", true); err != nil {
		t.Fatal(err)
	}
	if err := mergeIntoUserKubeconfig(user, labKube, "tug-lab-other", false); err != nil {
		t.Fatal(err)
	}
	if err := removeFromUserKubeconfig(user, "tug-lab"); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(user); err != nil || !strings.Contains(string(data), "tug-lab-other") {
		t.Fatalf("with another lab's context still in it, %s: %v\n%s", user, err, data)
	}
	if err := removeFromUserKubeconfig(user, "tug-lab-other"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(user); !os.IsNotExist(err) {
		data, _ := os.ReadFile(user)
		t.Fatalf("%s is still there with nothing in it (%v):\n%s", user, err, data)
	}
	// Its folder, which merging made, went with it; the home stays.
	if _, err := os.Stat(filepath.Dir(user)); !os.IsNotExist(err) {
		t.Fatalf("%s is still there, empty (%v)", filepath.Dir(user), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "home")); err != nil {
		t.Fatalf("the home folder went too: %v", err)
	}
	// `down` cleans the file `up` recorded and the one $KUBECONFIG names,
	// often the same: the second removal makes nothing again.
	if err := removeFromUserKubeconfig(user, "tug-lab-other"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(user)); !os.IsNotExist(err) {
		t.Fatalf("a second removal made %s again (%v)", filepath.Dir(user), err)
	}

	// A folder that holds anything else (kubectl's cache) stays.
	cache := filepath.Join(dir, "home", ".kube", "cache")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := mergeIntoUserKubeconfig(user, labKube, "tug-lab", true); err != nil {
		t.Fatal(err)
	}
	if err := removeFromUserKubeconfig(user, "tug-lab"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cache); err != nil {
		t.Fatalf("kubectl's cache beside the kubeconfig: %v", err)
	}
}

// `tug lab env` points $KUBECONFIG at the lab's own admin kubeconfig; a
// `down` run from that shell still removes the context from the file `up`
// added it to, and leaves the file $KUBECONFIG names alone.
func TestDownCleansTheKubeconfigUpWroteWhateverKUBECONFIGSays(t *testing.T) {
	dir := t.TempDir()
	l := &Lab{opts: Options{Name: "default", UpdateUserKubeconfig: true}, layout: Layout{Dir: filepath.Join(dir, "state")}}
	if err := os.MkdirAll(filepath.Dir(l.kubeconfig()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeKubeconfig(l.kubeconfig(), "https://127.0.0.1:6443", fakeFile(t, dir, "ca.crt"), "", "", "token", "default", ContextName("default")); err != nil {
		t.Fatal(err)
	}
	user := filepath.Join(dir, "home", ".kube", "config")
	t.Setenv("KUBECONFIG", user)
	if err := l.writeAdminKubeconfigs(); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(user); err != nil || !strings.Contains(string(data), "tug-lab") {
		t.Fatalf("up did not add the lab's context to %s: %v\n%s", user, err, data)
	}
	t.Setenv("KUBECONFIG", l.kubeconfig())
	before, err := os.ReadFile(l.kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := RemoveUserContext(l.layout.Dir, "default"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(user); !os.IsNotExist(err) {
		data, _ := os.ReadFile(user)
		t.Fatalf("%s still there after down (%v):\n%s", user, err, data)
	}
	if after, err := os.ReadFile(l.kubeconfig()); err != nil || string(after) != string(before) {
		t.Fatalf("down changed the lab's own kubeconfig, which $KUBECONFIG named (%v):\n%s", err, after)
	}
	// An `up` from that shell leaves the lab's own file as it is.
	if err := l.writeAdminKubeconfigs(); err != nil {
		t.Fatal(err)
	}
	if after, err := os.ReadFile(l.kubeconfig()); err != nil || string(after) != string(before) {
		t.Fatalf("up merged into the lab's own kubeconfig, which $KUBECONFIG named (%v):\n%s", err, after)
	}
}

// Two labs merging into one kubeconfig at once both end up in it: the
// read-modify-write is locked.
func TestConcurrentKubeconfigMergesKeepBoth(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "config")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		labKube := filepath.Join(dir, fmt.Sprintf("lab%d.yaml", i))
		if err := writeKubeconfig(labKube, "https://127.0.0.1:6443", fakeFile(t, dir, "ca.crt"), "", "", "token", "default", "lab"); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- mergeIntoUserKubeconfig(user, labKube, fmt.Sprintf("tug-lab-%d", i), false)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(user)
	for i := range 8 {
		if !strings.Contains(string(data), fmt.Sprintf("tug-lab-%d", i)) {
			t.Errorf("context tug-lab-%d lost in a concurrent merge", i)
		}
	}
}

func fakeFile(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A real-node lab builds the node's programs and not kwok, which only
// plays a fake node; a fake-node lab builds kwok and nothing of the node.
func TestLabToolsMatchTheNode(t *testing.T) {
	has := func(ts []tools.Tool, want tools.Tool) bool { return slices.Contains(ts, want) }
	real, fake := labTools(true), labTools(false)
	if has(real, tools.Kwok) || !has(real, tools.Kubelet) || !has(real, tools.KubeAPIServer) {
		t.Errorf("real node's tools %v: want kubelet and the control plane, no kwok", real)
	}
	if !has(fake, tools.Kwok) || has(fake, tools.Kubelet) || !has(fake, tools.ArgoCD) {
		t.Errorf("fake node's tools %v: want kwok and the control plane, no kubelet", fake)
	}
}
