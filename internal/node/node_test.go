package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/image"
	"github.com/tug-gitops/tug/internal/tools"
)

func TestNetworkForIsStableAndApart(t *testing.T) {
	a, b := NetworkFor("default"), NetworkFor("e2e")
	if a.Bridge != NetworkFor("default").Bridge || a.Subnet.String() != NetworkFor("default").Subnet.String() {
		t.Fatal("the same name gave two networks")
	}
	if a.Bridge == b.Bridge || a.Subnet.String() == b.Subnet.String() {
		t.Fatalf("two names, one network: %+v %+v", a, b)
	}
	_, labRange, _ := net.ParseCIDR("10.240.0.0/13")
	for _, n := range []Network{a, b} {
		if len(n.Bridge) > 15 {
			t.Errorf("bridge %q longer than a link name may be", n.Bridge)
		}
		if !labRange.Contains(n.Subnet.IP) || !n.Subnet.Contains(n.Gateway) {
			t.Errorf("%s / %s outside 10.240.0.0/13", n.Subnet, n.Gateway)
		}
	}
}

func TestLedgerUndoesInReverseAndOnlyWhatItMade(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := os.MkdirAll(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLedger(filepath.Join(dir, "state", "ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	made := filepath.Join(dir, "new", "a", "b")
	for _, p := range []string{made, filepath.Join(existing, "x"), existing} {
		if err := l.RecordPath(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(made, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(existing, "x"), []byte("made by the node"), 0o644)
	// A crash mid-write leaves half a line: it announced nothing done yet.
	f, _ := os.OpenFile(filepath.Join(dir, "state", "ledger.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"kind":"path","na`)
	f.Close()

	again, err := OpenLedger(filepath.Join(dir, "state", "ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	got := again.Changes()
	if len(got) != 2 || got[0].Name != filepath.Join(dir, "new") || got[1].Name != filepath.Join(existing, "x") {
		t.Fatalf("ledger = %+v, want the topmost new folder and the new file", got)
	}
	if err := again.Undo(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Errorf("%s/new survived the undo", dir)
	}
	if _, err := os.Stat(existing); err != nil {
		t.Errorf("the undo removed a folder that existed before: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "ledger.jsonl")); !os.IsNotExist(err) {
		t.Error("the ledger is still there after a complete undo")
	}
}

func TestCorefileHasNoForwarder(t *testing.T) {
	cf := corefile(NetworkFor("x"), "/k", 1, 2)
	if strings.Contains(cf, "forward") || strings.Contains(cf, "proxy") {
		t.Fatalf("the Corefile would ask resolvers off the machine:\n%s", cf)
	}
	if !strings.Contains(cf, "bind "+NetworkFor("x").Gateway.String()) {
		t.Errorf("CoreDNS not bound to the bridge address only:\n%s", cf)
	}
	if !strings.Contains(cniConfig("/d", NetworkFor("x")), `"ipMasq":false`) {
		t.Error("the CNI bridge would masquerade pods' traffic")
	}
}

// The lab's CoreDNS is built with chosen plugins only (lab/tools/coredns):
// each one the node's Corefile names must be in it, or CoreDNS stops at
// start on an unknown directive; forward, which would send queries off the
// machine, must not be.
func TestCoreDNSHasTheCorefilesPluginsOnly(t *testing.T) {
	bin := nodeTool(t, tools.CoreDNS)
	out, err := exec.Command(bin, "-plugins").CombinedOutput()
	if err != nil {
		t.Fatalf("coredns -plugins: %v\n%s", err, out)
	}
	have := map[string]bool{}
	for _, f := range strings.Fields(string(out)) {
		have[f] = true
	}
	directives := 0
	for _, line := range strings.Split(corefile(NetworkFor("x"), "/kc", 1, 2), "\n") {
		// The server block's directives are indented by four spaces, the
		// lines of their own blocks by eight.
		f := strings.Fields(line)
		if !strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "        ") || len(f) == 0 || f[0] == "}" {
			continue
		}
		directives++
		if !have[f[0]] && !have["dns."+f[0]] {
			t.Errorf("the Corefile's %q is not a plugin of the built CoreDNS:\n%s", f[0], out)
		}
	}
	if directives < 5 {
		t.Fatalf("read %d directives from the Corefile", directives)
	}
	if have["forward"] || have["dns.forward"] {
		t.Errorf("the built CoreDNS has the forward plugin:\n%s", out)
	}
}

// builtRuntime is the node's runtime from the tool cache (see nodeTool).
func builtRuntime(t *testing.T) Runtime {
	t.Helper()
	r := Runtime{Containerd: nodeTool(t, tools.Containerd), Shim: nodeTool(t, tools.ContainerdShim), Ctr: nodeTool(t, tools.Ctr), Runc: nodeTool(t, tools.Runc), CNIPlugins: map[string]string{}}
	for tl, name := range tools.CNIPlugins {
		r.CNIPlugins[name] = nodeTool(t, tl)
	}
	return r
}

// The configuration is one the pinned containerd reads as meant: its own
// dump of it (config dump merges the defaults, and would migrate an older
// version and warn) is version 4, listens on the node's socket, names
// the built runc, the node's CNI folder, the local sandbox image, the
// mirrors' folder and restrict_oom_score_adj, and leaves NRI off.
func TestContainerdReadsTheNodeConfig(t *testing.T) {
	rt := builtRuntime(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(containerdConfig(dir, image.PauseRef, rt.Runc)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(rt.Containerd, "--config", cfg, "config", "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("containerd config dump: %v\n%s", err, out)
	}
	dump := string(out)
	if strings.Contains(dump, "migrated") {
		t.Errorf("containerd migrates the node config: write the version it reads as is\n%s", dump)
	}
	for _, want := range []string{
		"version = 4",
		fmt.Sprintf("address = %q", dir+"/containerd.sock"),
		fmt.Sprintf("BinaryName = %q", rt.Runc),
		fmt.Sprintf("bin_dirs = [%q]", dir+"/cni/bin"),
		fmt.Sprintf("sandbox = %q", image.PauseRef),
		fmt.Sprintf("config_path = %q", dir+"/containerd/certs.d"),
		"restrict_oom_score_adj = true",
		"'io.containerd.nri.v1.nri'",
	} {
		if !strings.Contains(strings.ReplaceAll(dump, "'", `"`), strings.ReplaceAll(want, "'", `"`)) {
			t.Errorf("containerd's dump of the node config lacks %s:\n%s", want, dump)
		}
	}
}

func TestWithPathPutsTheNodesBinFirst(t *testing.T) {
	got := withPath([]string{"HOME=/h", "PATH=/usr/bin:/bin"}, "/node/bin")
	if strings.Join(got, " ") != "HOME=/h PATH=/node/bin:/usr/bin:/bin" {
		t.Fatalf("withPath = %q", got)
	}
}

// nodeTool is tl's binary from the tool cache. One not built yet is
// built when CI=true, as the end-to-end suite's lab would build it a few
// minutes later, so that CI from empty caches tests the node instead of
// skipping it; elsewhere the test skips, since the build takes minutes.
func nodeTool(t *testing.T, tl tools.Tool) string {
	t.Helper()
	b := &tools.Builder{ModulesDir: "../../lab/tools"}
	p, err := b.Path(tl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("CI") != "true" {
		t.Skipf("%s is not built yet (tug lab up --node real builds it; with CI=true this test builds it)", tl)
	}
	t.Logf("building %s: first run only", tl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if p, err = b.Ensure(ctx, tl); err != nil {
		t.Fatalf("build %s: %v", tl, err)
	}
	return p
}

// needRealHost skips unless this host can run a real node.
func needRealHost(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("changes the host")
	}
	if err := Check(); err != nil {
		t.Skip(err)
	}
	// Only one real node per host, and these tests compare the host
	// before and after: they run when no lab runs one (make test runs
	// them before the end-to-end suite, whose lab does).
	if HostTaken() {
		t.Skip("a lab on this host runs the real node now; these tests change the same host state")
	}
}

func testCA(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	kder, _ := x509.MarshalECPrivateKey(key)
	c, k := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	os.WriteFile(c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return c, k
}

func pauseC(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes")
	cmd.Dir = "../../lab/tools/node"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("find k8s.io/kubernetes: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "build/pause/linux/pause.c")
}

// A node's host changes are undone from the ledger alone, as `lab down`
// does after a supervisor was SIGKILLed: containerd killed with -9 and
// the node's images loaded, the host afterwards is what it was before.
func TestUndoAfterKillLeavesHostAsFound(t *testing.T) {
	needRealHost(t)
	rt := builtRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before, err := Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	ca, caKey := testCA(t, work)
	next := 0
	repo, _ := filepath.Abs("../..")
	n, err := Prepare(ctx, Config{
		Lab: "node-test-" + filepath.Base(work), Dir: filepath.Join(work, "node"), APIServer: "https://127.0.0.1:1",
		CACert: ca, CAKey: caKey, ServiceCIDR: "10.96.0.0/16",
		Runtime:  rt,
		RepoRoot: repo, ImageCache: filepath.Join(work, "images"), Mirrors: map[string]string{"ghcr.io": "http://127.0.0.1:1"},
		Port: func(string) (int, error) { next++; return 40000 + next, nil },
		Env:  os.Environ(),
	})
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			n.Undo(context.Background())
		}
	}()
	if out, err := exec.Command("nft", "list", "table", "inet", n.Net.Table).CombinedOutput(); err != nil || !strings.Contains(string(out), "pods never reach another interface") {
		t.Fatalf("the node's nftables table is missing: %v\n%s", err, out)
	}
	p := n.Containerd()
	cmd := exec.Command(p.Binary, p.Args...)
	cmd.Env = p.Env
	logf, _ := os.Create(filepath.Join(work, "containerd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for p.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(work, "containerd.log"))
			t.Fatalf("containerd not serving after 30 s:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := n.LoadPause(ctx, pauseC(t)); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(rt.Ctr, "--address", filepath.Join(work, "node", "containerd.sock"), "-n", "k8s.io", "images", "ls", "-q").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), image.PauseRef) {
		t.Errorf("containerd lacks %s; it has:\n%s", image.PauseRef, out)
	}
	if b, err := os.ReadFile(filepath.Join(work, "node", "containerd", "certs.d", "ghcr.io", "hosts.toml")); err != nil || !strings.Contains(string(b), `[host."http://127.0.0.1:1"]`) {
		t.Errorf("ghcr.io's mirror is not configured: %v\n%s", err, b)
	}
	// The supervisor dies without undoing anything.
	cmd.Process.Signal(syscall.SIGKILL)
	n.lock.Close()
	released = true
	undoFromLedgerAsFound(t, ctx, filepath.Join(work, "node"), before)
	if HasLedger(filepath.Join(work, "node")) {
		t.Error("the ledger survived a complete undo")
	}
}

// HostTaken sees the lock Prepare holds, and only while it is held.
func TestHostTakenWhileALabHoldsTheLock(t *testing.T) {
	ln, err := net.Listen("unix", hostLock)
	if err != nil {
		t.Skip("a lab on this host runs the real node now")
	}
	if !HostTaken() {
		t.Error("HostTaken is false while the lock is held")
	}
	ln.Close()
	if HostTaken() {
		t.Error("HostTaken is true after the lock was let go")
	}
}

// undoFromLedgerAsFound undoes a node from its ledger alone, as lab down
// does after a killed supervisor, and fails unless the host is as before.
func undoFromLedgerAsFound(t *testing.T, ctx context.Context, dir string, before HostSnapshot) {
	t.Helper()
	if err := UndoDir(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}
	after, err := Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := before.Diff(after); len(d) > 0 {
		t.Fatalf("the host differs after undo:\n%s", strings.Join(d, "\n"))
	}
}
