package e2e

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tug-gitops/tug/internal/lab"
	"github.com/tug-gitops/tug/internal/node"
)

// listener is one listening TCP socket of a process.
type listener struct {
	addr net.IP
	port int
}

// The lab's one documented exception (docs/lab.md): the v3.2 application
// controller binds its metrics server to every interface.
const metricsException = "argocd-application-controller"

func TestLabListensOnLoopbackOnly(t *testing.T) {
	st, err := lab.ProbeStatus(context.Background(), env.dir)
	if err != nil {
		t.Fatal(err)
	}
	sockets, err := listeningSockets()
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{st.Supervisor}
	names := map[int]string{st.Supervisor: "supervisor"}
	for _, c := range st.Components {
		pids = append(pids, c.PID)
		names[c.PID] = c.Name
	}
	checked := 0
	for _, pid := range pids {
		inodes, err := socketInodes(pid)
		if err != nil {
			t.Fatalf("%s (pid %d): %v", names[pid], pid, err)
		}
		for inode := range inodes {
			l, ok := sockets[inode]
			if !ok {
				continue // not a listening TCP socket
			}
			checked++
			if l.addr.IsLoopback() {
				continue
			}
			// A real node's kubelet API and DNS serve the pods, on the pod bridge.
			if st.Node == lab.NodeReal && (names[pid] == "kubelet" || names[pid] == "coredns") && l.addr.Equal(node.NetworkFor(st.Name).Gateway) {
				t.Logf("on the pod bridge: %s on %s:%d", names[pid], l.addr, l.port)
				continue
			}
			if names[pid] == metricsException && l.port == componentPort(st, metricsException, "metrics") {
				t.Logf("documented exception: %s metrics on %s:%d", names[pid], l.addr, l.port)
				continue
			}
			t.Errorf("%s (pid %d) listens on %s:%d, not loopback", names[pid], pid, l.addr, l.port)
		}
	}
	if checked < len(st.Components) {
		t.Fatalf("found only %d listening sockets for %d components: the check did not see them", checked, len(st.Components))
	}
	t.Logf("%d listening sockets checked", checked)
}

// Every Unix socket a lab program listens on is in the lab's state folder:
// none in /tmp or elsewhere, where a second lab would take it over and
// where it would outlive 'lab down --delete'. The one exception is where
// the real node's programs put a socket whatever their configuration says
// (the kubelet's device-plugin socket), in node.FixedPaths, which the
// node's host ledger records and 'lab down' restores.
func TestLabUnixSocketsAreInItsStateFolder(t *testing.T) {
	st, err := lab.ProbeStatus(context.Background(), env.dir)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := listeningUnixSockets()
	if err != nil {
		t.Fatal(err)
	}
	var checked []string
	for _, c := range st.Components {
		inodes, err := socketInodes(c.PID)
		if err != nil {
			t.Fatalf("%s (pid %d): %v", c.Name, c.PID, err)
		}
		for inode := range inodes {
			path, ok := paths[inode]
			if !ok || strings.HasPrefix(path, "@") {
				continue // not a listening Unix socket, or an abstract one (no file)
			}
			checked = append(checked, c.Name+": "+path)
			if st.Node == lab.NodeReal && underAny(path, node.FixedPaths) {
				continue
			}
			if !underAny(path, []string{env.dir}) {
				t.Errorf("%s (pid %d) listens on %s, outside the lab's state folder %s", c.Name, c.PID, path, env.dir)
			}
		}
	}
	if st.Node == lab.NodeReal && len(checked) == 0 {
		t.Fatal("found no listening Unix socket, not even containerd's: the check did not see them")
	}
	t.Logf("checked: %v", checked)
}

// underAny says whether path is inside one of the folders dirs.
func underAny(path string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(path, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// listeningUnixSockets reads /proc/net/unix for listening sockets, by inode.
func listeningUnixSockets() (map[string]string, error) {
	file, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil, err
	}
	defer file.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(file)
	sc.Scan() // header: Num RefCount Protocol Flags Type St Inode Path
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		const acceptConn = "00010000" // __SO_ACCEPTCON: listening
		if len(fields) < 8 || fields[3] != acceptConn {
			continue
		}
		out[fields[6]] = fields[7]
	}
	return out, sc.Err()
}

func componentPort(st *lab.Status, name, key string) int {
	for _, c := range st.Components {
		if c.Name == name {
			return c.Ports[key]
		}
	}
	return -1
}

// listeningSockets reads /proc/net/tcp{,6} for sockets in LISTEN state, by inode.
func listeningSockets() (map[string]listener, error) {
	out := map[string]listener{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		file, err := os.Open(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		sc := bufio.NewScanner(file)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A = LISTEN
				continue
			}
			host, port, _ := strings.Cut(fields[1], ":")
			ip, err := procIP(host)
			if err != nil {
				file.Close()
				return nil, err
			}
			p, _ := strconv.ParseInt(port, 16, 32)
			out[fields[9]] = listener{addr: ip, port: int(p)}
		}
		file.Close()
	}
	return out, nil
}

// procIP decodes /proc/net's little-endian-per-word hex address.
func procIP(h string) (net.IP, error) {
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, err
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b), nil
}

// socketInodes lists the socket inodes pid has open.
func socketInodes(pid int) (map[string]bool, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	return out, nil
}
