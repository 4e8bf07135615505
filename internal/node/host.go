// Package node runs a real Kubernetes node for the lab: containerd, runc
// and the CNI bridge plugin from the host's packages, and a kubelet,
// kube-proxy and CoreDNS built from Go modules, all as processes with their
// state in the lab's state folder.
//
// A node changes the host: a bridge, an nftables table of its own (and
// kube-proxy's), a few sysctls, cgroup folders, mounts and some fixed paths
// the kubelet and containerd use whatever they are told. Every such change
// is written to a ledger in the state folder before it is made, and Undo
// reverts what the ledger lists — also when the supervisor that made the
// changes was killed — so `tug lab down --delete` leaves the host as found.
package node

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Host programs a real node needs, and where Debian installs them.
var (
	hostBinaries = []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "nft", "gcc"}
	cniDir       = "/usr/lib/cni"
	cniPlugins   = []string{"bridge", "host-local", "loopback"}
)

// InstallHint says how to get what Check finds missing.
const InstallHint = "apt-get install containerd runc containernetworking-plugins nftables gcc"

// Check reports why this host cannot run a real node, or nil if it can:
// Linux, root, the container runtime and the CNI plugins installed.
func Check() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("a real node needs Linux (this is %s)", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return errors.New("a real node needs root (containers, a bridge and cgroups); run as root or use --node fake")
	}
	var missing []string
	for _, b := range hostBinaries {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	for _, p := range cniPlugins {
		if _, err := os.Stat(cniDir + "/" + p); err != nil {
			missing = append(missing, cniDir+"/"+p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("a real node needs %s, not found; install them with: %s", strings.Join(missing, ", "), InstallHint)
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		return fmt.Errorf("a real node needs cgroups: %w", err)
	}
	return nil
}
