// Package node runs a real Kubernetes node for the lab: containerd, runc,
// the CNI plugins, a kubelet, kube-proxy and CoreDNS, all built from Go
// modules (lab/tools), all as processes with their state in the lab's
// state folder.
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
	"path/filepath"
	"runtime"
	"strings"
)

// What a real node needs from the host beyond Linux and root: nft (the
// node's table; kube-proxy uses the kernel's nftables directly), gcc with
// a static C library (the sandbox image's pause is built from C), and
// libseccomp's headers through pkg-config (runc is built with seccomp, for
// the pods' RuntimeDefault profile).
var hostBinaries = []string{"nft", "gcc", "pkg-config"}

// InstallHint says how to get what Check finds missing (Debian's names).
const InstallHint = "apt-get install nftables gcc libc6-dev pkg-config libseccomp-dev"

// Check reports why this host cannot run a real node, or nil if it can:
// Linux, root, cgroups, and what building and running the node's programs
// needs from the host.
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
	if len(missing) == 0 {
		// gcc names a library it finds by its full path, one it does not by its bare name.
		if out, err := exec.Command("gcc", "-print-file-name=libc.a").Output(); err != nil || !filepath.IsAbs(strings.TrimSpace(string(out))) {
			missing = append(missing, "a static C library (libc.a)")
		}
		if exec.Command("pkg-config", "--exists", "libseccomp").Run() != nil {
			missing = append(missing, "libseccomp's headers (pkg-config libseccomp)")
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
