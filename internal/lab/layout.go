package lab

import (
	"fmt"
	"path/filepath"

	"github.com/tug-gitops/tug/internal/node"
)

// Layout names every path in a lab's state folder, so nothing else joins
// path strings into it (the CLI and the end-to-end tests included).
type Layout struct {
	// Dir is the lab's state folder.
	Dir string
}

// LayoutOf returns the layout of the lab called name under root ("" for
// DefaultStateRoot).
func LayoutOf(root, name string) (Layout, error) {
	dir, err := StateDir(root, name)
	return Layout{Dir: dir}, err
}

// maxSocketPath is the longest path a Unix socket can have on Linux:
// sun_path holds 108 bytes, the final NUL included.
const maxSocketPath = 107

// longestSocket is the longest Unix socket path in the state folder of a
// lab on kind (NodeReal or NodeFake): a real node's kubelet's; without it,
// the repo-server's credential helper's.
func (l Layout) longestSocket(kind string) string {
	if kind == NodeReal {
		return node.LongestSocket(l.Node())
	}
	return l.AskPassSocket()
}

// CheckSocketPaths says whether the state folder's path leaves room for
// the Unix sockets the programs of a lab on kind make in it (containerd's,
// the kubelet's, the repo-server's credential helper's): a program whose
// socket path is too long fails at start with a less helpful error.
func (l Layout) CheckSocketPaths(kind string) error {
	longest := l.longestSocket(kind)
	if len(longest) > maxSocketPath {
		return fmt.Errorf("state folder %s is too long for the lab's Unix sockets: %s would be %d characters, and Linux allows %d; use a shorter --state-dir",
			l.Dir, longest, len(longest), maxSocketPath)
	}
	return nil
}

func (l Layout) path(parts ...string) string {
	return filepath.Join(append([]string{l.Dir}, parts...)...)
}

// Lock is the supervisor's lock: held by the live supervisor, with its
// pid and start time written in.
func (l Layout) Lock() string { return l.path("lock") }

// LaunchLock serialises `tug lab up`s deciding whether to start a supervisor.
func (l Layout) LaunchLock() string { return l.path("launch.lock") }

// Status is the supervisor's status file (status.json).
func (l Layout) Status() string { return l.path("status.json") }

// Ports remembers each listener's port across restarts.
func (l Layout) Ports() string { return l.path("ports.json") }

// Logs holds one log per component and the supervisor's.
func (l Layout) Logs() string { return l.path("logs") }

// Log is a component's log ("supervisor" for the lab's own).
func (l Layout) Log(component string) string {
	if component == "gitea" {
		return l.path("gitea", "log", "gitea.log")
	}
	return l.path("logs", component+".log")
}

// SupervisorLog is the log of the supervisor `lab up` started.
func (l Layout) SupervisorLog() string { return l.Log("supervisor") }

// PKI holds the lab's CA, certificates and keys.
func (l Layout) PKI() string { return l.path("pki") }

// CACert is the lab CA's certificate, which every lab endpoint's chains to.
func (l Layout) CACert() string { return l.path("pki", "ca.crt") }

// Kubeconfig is the kubeconfig of one identity ("admin", "kwok", an Argo
// CD component…).
func (l Layout) Kubeconfig(identity string) string {
	return l.path("kubeconfig", identity+".yaml")
}

// AdminKubeconfig is the lab administrator's kubeconfig.
func (l Layout) AdminKubeconfig() string { return l.Kubeconfig("admin") }

// UserKubeconfigRecord names the user's kubeconfig file that `up` added
// the lab's context to, so `down` finds it whatever $KUBECONFIG says then.
func (l Layout) UserKubeconfigRecord() string { return l.path("kubeconfig", "user-kubeconfig") }

// Kine holds the cluster's database.
func (l Layout) Kine() string { return l.path("kine") }

// KineDB is the cluster's SQLite database: its existence marks a lab that
// has run before.
func (l Layout) KineDB() string { return l.path("kine", "state.db") }

// Gitea is the forge's state folder.
func (l Layout) Gitea() string { return l.path("gitea") }

// ForgeTokenFile holds the forge administrator's API token (mode 0600).
func (l Layout) ForgeTokenFile() string { return l.path("gitea", "admin-token") }

// ArgoCDHome is an Argo CD component's working folder.
func (l Layout) ArgoCDHome(component string) string { return l.path("argocd", component) }

// Node is the real node's folder: its configs, containerd's state and
// sockets, the kubelet's root folder and the ledger of its host changes.
func (l Layout) Node() string { return l.path("node") }

// AskPassSocket is where the repo-server serves git's credential helper
// (upstream's default, /tmp/reposerver-ask-pass.sock, would be shared by
// every lab on the host and left behind by each).
func (l Layout) AskPassSocket() string { return l.path("argocd", "ask-pass.sock") }

// BootstrapMarker exists once Argo CD was bootstrapped on this state.
func (l Layout) BootstrapMarker() string { return l.path("argocd-bootstrapped") }

// BootstrapDigest is the digest of what bootstrap applied last.
func (l Layout) BootstrapDigest() string { return l.path("argocd-applied.sha256") }

// RedisPassword is the lab's Redis password (mode 0600).
func (l Layout) RedisPassword() string { return l.path("redis-password") }

// Home is the HOME every component runs with.
func (l Layout) Home() string { return l.path("home") }

// Cache is the folder for a program's caches (kubectl's discovery…).
func (l Layout) Cache(name string) string { return l.path("cache", name) }

// ComponentDir is a control-plane component's working folder.
func (l Layout) ComponentDir(name string) string { return l.path(name) }
