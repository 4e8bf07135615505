package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tug-gitops/tug/internal/fsutil"
	"github.com/tug-gitops/tug/internal/supervisor"
)

var validName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$`)

// DefaultStateRoot is $XDG_STATE_HOME/tug/lab (or ~/.local/state/tug/lab).
func DefaultStateRoot() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "tug", "lab")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "tug", "lab")
	}
	return filepath.Join(home, ".local", "state", "tug", "lab")
}

// StateDir returns the state folder of the lab called name.
func StateDir(root, name string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("lab name %q: use 1-32 lower-case letters, digits and '-'", name)
	}
	if root == "" {
		root = DefaultStateRoot()
	}
	// The lab's programs run in folders of their own and find their
	// files by the paths written into their flags and configs: those
	// paths must not depend on the working folder.
	root, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, name), nil
}

// ports remembers which loopback port each listener got, so a lab that
// starts again on the same state keeps its addresses (kubeconfigs, Argo CD
// cluster URLs and the forge's clone URLs stay valid).
type ports struct {
	mu sync.Mutex
	m  map[string]int
	// pick returns a port nothing listens on (the kernel's choice); a
	// field so tests can make it repeat itself.
	pick func() (int, error)
}

func loadPorts(path string) (*ports, error) {
	p := &ports{m: map[string]int{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &p.m); err != nil {
		return nil, fmt.Errorf("%s: %w (delete it to pick new ports)", path, err)
	}
	return p, nil
}

// get returns the remembered port for key when it is still free, or a new
// free one. Components start concurrently, hence the lock. A port given to
// another key is never handed out again even while nothing listens on it
// yet: the kernel may well offer it twice (kube-controller-manager once
// lost its port to the repo-server's metrics that way).
func (p *ports) get(key string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if port, ok := p.m[key]; ok && !p.takenByOther(key, port) && portFree(port) {
		return port, nil
	}
	pick := p.pick
	if pick == nil {
		pick = freePort
	}
	for range 100 {
		port, err := pick()
		if err != nil {
			return 0, err
		}
		if !p.takenByOther(key, port) {
			p.m[key] = port
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port for %s after 100 tries", key)
}

// listen runs start on key's port and, when that port was taken between
// being found free and start binding it (another program's listener, or
// an outgoing connection given it as its local port), on a new one. Only
// for listeners whose address nothing outside this start has recorded.
func (p *ports) listen(key string, start func(port int) error) (int, error) {
	const attempts = 3
	for i := 1; ; i++ {
		port, err := p.get(key)
		if err != nil {
			return 0, err
		}
		err = start(port)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || i == attempts {
			return port, err
		}
		p.forget(key, port)
	}
}

// forget drops key's port, if it is still port, so the next get picks a
// new one.
func (p *ports) forget(key string, port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m[key] == port {
		delete(p.m, key)
	}
}

func (p *ports) takenByOther(key string, port int) bool {
	for k, v := range p.m {
		if k != key && v == port {
			return true
		}
	}
	return false
}

// Lab ports are picked in listenPorts, below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range, 32768-60999 by default), where it never
// gives an outgoing connection its local port: no connection can then take
// a lab's port between its being found free and being bound, nor while a
// stopped lab waits to start again on its remembered ports. The range ends
// before Kubernetes' NodePorts (30000-32767).
var listenPorts = struct{ lo, hi int }{20000, 30000}

// freePort returns a free loopback port in listenPorts, or the kernel's
// choice when the ephemeral range overlaps listenPorts or is unknown.
func freePort() (int, error) {
	if ephemeralLow() < listenPorts.hi {
		return kernelPort()
	}
	for range 50 {
		port := listenPorts.lo + rand.IntN(listenPorts.hi-listenPorts.lo)
		if portFree(port) {
			return port, nil
		}
	}
	return kernelPort()
}

// ephemeralLow is the first port of the kernel's ephemeral range, or 0
// when it cannot be read (not Linux).
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}

func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lookup returns the port already given to key (0 if none).
func (p *ports) lookup(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[key]
}

func (p *ports) save(path string) error {
	p.mu.Lock()
	data, _ := json.MarshalIndent(p.m, "", "  ")
	p.mu.Unlock()
	return fsutil.WriteFileAtomic(path, data, 0o600)
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Status is what `tug lab status` shows.
type Status struct {
	Name       string `json:"name"`
	StateDir   string `json:"stateDir"`
	Supervisor int    `json:"supervisorPid,omitempty"`
	// SupervisorStart is the supervisor's start time (see supervisor.Proc).
	SupervisorStart uint64 `json:"supervisorStartTime,omitempty"`
	// Phase is building, starting, ready, failed, stopping or stopped.
	Phase string `json:"phase"`
	// Build is the program being built, while the phase is building.
	Build      *BuildStatus      `json:"build,omitempty"`
	Error      string            `json:"error,omitempty"`
	Redis      string            `json:"redis,omitempty"`
	Kubeconfig string            `json:"kubeconfig"`
	Endpoints  map[string]string `json:"endpoints,omitempty"`
	// Node is "real" or "fake"; NodeReason says why a node is fake.
	Node       string        `json:"node,omitempty"`
	NodeReason string        `json:"nodeReason,omitempty"`
	Timings    []PhaseTiming `json:"timings,omitempty"`
	// Notices are what a user should know about this lab, e.g. why
	// Argo CD's web UI is not served.
	Notices    []string          `json:"notices,omitempty"`
	Components []ComponentStatus `json:"components"`
	Updated    time.Time         `json:"updated"`
	// RSS is the supervisor's resident memory, TotalRSS the whole lab's
	// (the supervisor and every component's process group); measured by
	// ProbeStatus.
	RSS      int64 `json:"rssBytes,omitempty"`
	TotalRSS int64 `json:"totalRssBytes,omitempty"`
}

// BuildStatus names a running build of a third-party program.
type BuildStatus struct {
	Tool string `json:"tool"`
	supervisor.Proc
}

// PhaseTiming records one step of `lab up`: how long it ran, and when it
// was done counted from the start (steps run side by side, so the
// durations do not add up to the start's time).
type PhaseTiming struct {
	Phase   string  `json:"phase"`
	Seconds float64 `json:"seconds"`
	At      float64 `json:"doneAt"`
}

// ComponentStatus describes one supervised process.
type ComponentStatus struct {
	Name      string         `json:"name"`
	PID       int            `json:"pid"`
	StartTime uint64         `json:"startTime,omitempty"`
	State     string         `json:"state,omitempty"`
	RSS       int64          `json:"rssBytes,omitempty"`
	Ports     map[string]int `json:"ports,omitempty"`
	Restarts  int            `json:"restarts"`
	Healthy   bool           `json:"healthy"`
	Error     string         `json:"error,omitempty"`
	Log       string         `json:"log"`
}

// Proc is the component's process identity.
func (c ComponentStatus) Proc() supervisor.Proc {
	return supervisor.Proc{PID: c.PID, Start: c.StartTime}
}

func (s *Status) sortComponents() {
	sort.SliceStable(s.Components, func(i, j int) bool { return s.Components[i].Name < s.Components[j].Name })
}

// ReadStatus reads the status file the supervisor keeps in dir.
func ReadStatus(dir string) (*Status, error) {
	data, err := os.ReadFile(Layout{Dir: dir}.Status())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s: start one with 'tug lab up'", errNoLab, dir)
		}
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s/status.json: %w", dir, err)
	}
	return &s, nil
}

func writeStatus(dir string, s *Status) error {
	s.Updated = time.Now().UTC()
	data, _ := json.MarshalIndent(s, "", "  ")
	return fsutil.WriteFileAtomic(Layout{Dir: dir}.Status(), data, 0o600)
}
