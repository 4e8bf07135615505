// Package lifecycle tests how a lab is started, interrupted and stopped
// in every phase, with the real tug binary and no shared lab. The
// third-party programs' build is made to stall (go build -toolexec with a
// script that sleeps), in an empty tool cache of the test's own, so a lab
// is surely still building when the test interrupts it; nothing of
// Kubernetes is built.
package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/lab"
	"github.com/tug-gitops/tug/internal/supervisor"
)

var tugBin, repo string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("lifecycle: skipped in -short mode")
		os.Exit(0)
	}
	work, err := os.MkdirTemp("", "tug-lifecycle-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repo, _ = filepath.Abs("../..")
	tugBin = filepath.Join(work, "tug")
	build := exec.Command("go", "build", "-o", tugBin, "./cmd/tug")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build tug: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(work)
	os.Exit(code)
}

// stallLab is a lab whose programs' build stalls: each compile or link
// becomes a `sleep` that records its pid.
type stallLab struct {
	t        *testing.T
	name     string
	root     string // --state-dir
	layout   lab.Layout
	pidFile  string
	env      []string
	mu       sync.Mutex
	launched []*upRun
}

func newStallLab(t *testing.T, name string) *stallLab {
	t.Helper()
	work := t.TempDir()
	script := filepath.Join(work, "stall.sh")
	pidFile := filepath.Join(work, "stalled-pids")
	// The go command asks each tool for its version first: let that through.
	body := "#!/bin/sh\nif [ \"$2\" = \"-V=full\" ]; then exec \"$@\"; fi\necho $$ >> " + pidFile + "\nexec sleep 600\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	// The state folder is short, as a user's is: the lab refuses one too
	// long for the Unix sockets its programs make in it.
	root, err := os.MkdirTemp("", "tug-lc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) }) // after s.cleanup, registered below
	s := &stallLab{t: t, name: name, root: root, pidFile: pidFile}
	s.layout, _ = lab.LayoutOf(s.root, name)
	s.env = append(os.Environ(),
		"TUG_BIN_CACHE="+filepath.Join(work, "bin-cache"),
		"GOFLAGS=-toolexec="+script,
		"KUBECONFIG="+filepath.Join(work, "kube", "config"),
	)
	t.Cleanup(s.cleanup)
	return s
}

// upRun is one `tug lab up` running.
type upRun struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once cmd has exited
	err  error         // cmd.Wait's, once done is closed
}

func (s *stallLab) up(extra ...string) *upRun {
	s.t.Helper()
	args := append([]string{"lab", "up", "--name", s.name, "--state-dir", s.root, "--repo", repo, "--no-kubeconfig-update"}, extra...)
	cmd := exec.Command(tugBin, args...)
	cmd.Dir, cmd.Env = repo, s.env
	r := &upRun{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { r.err = cmd.Wait(); close(r.done) }()
	s.mu.Lock()
	s.launched = append(s.launched, r)
	s.mu.Unlock()
	return r
}

// wait waits for a `tug lab up` to exit.
func (r *upRun) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		t.Fatalf("tug lab up still running after %s:\n%s", timeout, r.out)
		return nil
	}
}

func (s *stallLab) tug(args ...string) (string, error) {
	full := append(append([]string(nil), args...), "--name", s.name, "--state-dir", s.root, "--repo", repo)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tugBin, full...)
	cmd.Dir, cmd.Env = repo, s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// building waits until the lab's supervisor records a build and that
// build has a compile or link stalled, and returns every process the lab
// has then: the supervisor, the build's go command and the stalled tools.
func (s *stallLab) building() []supervisor.Proc {
	s.t.Helper()
	var procs []supervisor.Proc
	eventually(s.t, 10*time.Minute, "the lab building, with a compile stalled", func() error {
		if r := s.allExited(); r != nil {
			s.t.Fatalf("every 'tug lab up' exited before the lab was building; the last: %v\n%s", r.err, r.out)
		}
		st, err := lab.ReadStatus(s.layout.Dir)
		if err != nil {
			return err
		}
		if st.Phase != lab.PhaseBuilding || st.Build == nil {
			return fmt.Errorf("phase %s, build %+v", st.Phase, st.Build)
		}
		stalled := s.stalled()
		if len(stalled) == 0 {
			return fmt.Errorf("no compile stalled yet")
		}
		procs = append([]supervisor.Proc{{PID: st.Supervisor, Start: st.SupervisorStart}, st.Build.Proc}, stalled...)
		for _, p := range procs {
			if !p.Alive() {
				return fmt.Errorf("%v not alive", p)
			}
		}
		return nil
	}, s.describe)
	return procs
}

func (s *stallLab) stalled() []supervisor.Proc {
	data, _ := os.ReadFile(s.pidFile)
	var out []supervisor.Proc
	for _, f := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(f)
		if p, err := supervisor.Identify(pid); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// nothingLeft checks that every process the lab had is gone, by pid and
// start time, and so is every process that stalled in its build.
func (s *stallLab) nothingLeft(procs []supervisor.Proc) {
	s.t.Helper()
	all := append(append([]supervisor.Proc(nil), procs...), s.stalled()...)
	eventually(s.t, 10*time.Second, "every process of the lab gone", func() error {
		for _, p := range all {
			if p.Alive() {
				return fmt.Errorf("%v (%s) still runs", p, supervisor.Cmdline(p.PID))
			}
		}
		return nil
	}, s.describe)
	if _, held, _ := supervisor.LockHolder(s.layout.Lock()); held {
		s.t.Fatal("the state's lock is still held")
	}
}

func (s *stallLab) describe() string {
	var b strings.Builder
	st, _ := os.ReadFile(s.layout.Status())
	log, _ := os.ReadFile(s.layout.SupervisorLog())
	fmt.Fprintf(&b, "--- status.json ---\n%s\n--- supervisor.log ---\n%s\n", st, log)
	s.mu.Lock()
	for i, r := range s.launched {
		fmt.Fprintf(&b, "--- tug lab up #%d ---\n%s\n", i+1, r.out)
	}
	s.mu.Unlock()
	return b.String()
}

// cleanup stops whatever a failed test left: the lab, then the stalled
// processes by their recorded identity.
func (s *stallLab) cleanup() {
	_, _ = s.tug("lab", "down")
	s.stopLaunched()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	supervisor.StopAll(ctx, s.stalled(), time.Second)
}

// allExited returns the last `tug lab up` launched if every one has
// exited, else nil.
func (s *stallLab) allExited() *upRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.launched {
		select {
		case <-r.done:
		default:
			return nil
		}
	}
	if len(s.launched) == 0 {
		return nil
	}
	return s.launched[len(s.launched)-1]
}

// stopLaunched kills every `tug lab up` still running and waits until it
// has exited, so none holds a file under the state folder any more.
func (s *stallLab) stopLaunched() {
	s.mu.Lock()
	launched := append([]*upRun(nil), s.launched...)
	s.mu.Unlock()
	for _, r := range launched {
		_ = r.cmd.Process.Kill() // an error once it has exited
		<-r.done
	}
}

// The story a new user lived: `tug lab up` interrupted while it builds the
// programs on first use. Ctrl-C must stop everything it started.
func TestCtrlCDuringFirstBuildStopsEverything(t *testing.T) {
	s := newStallLab(t, "ctrlc")
	up := s.up()
	procs := s.building()
	if err := up.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := up.wait(t, 2*time.Minute)
	if err == nil {
		t.Fatalf("an interrupted lab up exited 0:\n%s", up.out)
	}
	out := up.out.String()
	for _, want := range []string{"Interrupted while the lab was building", "was building: stopped its supervisor"} {
		if !strings.Contains(out, want) {
			t.Errorf("lab up's output lacks %q:\n%s", want, out)
		}
	}
	s.nothingLeft(procs)
	if out, err := s.tug("lab", "down"); err != nil || !strings.Contains(out, "was not running") {
		t.Fatalf("lab down after the interrupted up: %v\n%s", err, out)
	}
}

// With --background, Ctrl-C leaves the lab building and says how to stop
// it; a second `lab up` neither truncates the live supervisor's log nor
// starts another, and `lab down` stops the building lab and says so.
func TestBackgroundBuildIsFollowedThenStoppedByDown(t *testing.T) {
	s := newStallLab(t, "bg")
	first := s.up("--background")
	procs := s.building()
	_ = first.cmd.Process.Signal(os.Interrupt)
	if err := first.wait(t, time.Minute); err == nil {
		t.Fatal("an interrupted lab up exited 0")
	}
	if out := first.out.String(); !strings.Contains(out, "keeps building in the background") || !strings.Contains(out, "lab down --name bg") {
		t.Fatalf("lab up --background, interrupted, does not say how to stop the lab:\n%s", out)
	}
	if !procs[0].Alive() {
		t.Fatal("the supervisor stopped although --background was given")
	}
	logBefore, _ := os.ReadFile(s.layout.SupervisorLog())

	second := s.up()
	eventually(t, time.Minute, "the second lab up following the first", func() error {
		if !strings.Contains(second.out.String(), `lab "bg" is building already (supervisor pid `+strconv.Itoa(procs[0].PID)) {
			return fmt.Errorf("not yet")
		}
		return nil
	}, s.describe)
	logAfter, _ := os.ReadFile(s.layout.SupervisorLog())
	if !bytes.HasPrefix(logAfter, logBefore) {
		t.Fatalf("the second lab up rewrote the live supervisor's log:\nbefore:\n%s\nafter:\n%s", logBefore, logAfter)
	}

	out, err := s.tug("lab", "down")
	if err != nil || !strings.Contains(out, `lab "bg" was building: stopped its supervisor (pid `+strconv.Itoa(procs[0].PID)) {
		t.Fatalf("lab down on a building lab: %v\n%s", err, out)
	}
	s.nothingLeft(procs)
	if err := second.wait(t, time.Minute); err == nil || !strings.Contains(second.out.String(), "lab failed to start") {
		t.Fatalf("the following lab up, its lab stopped: %v\n%s", err, second.out)
	}
}

// A supervisor killed outright (SIGKILL, the OOM killer) leaves its build
// running in the build's own process group: `lab down` finds it by the
// recorded pid and start time, says the lab was half-dead, and stops it.
func TestDownStopsWhatAKilledSupervisorLeft(t *testing.T) {
	s := newStallLab(t, "killed")
	up := s.up("--background")
	procs := s.building()
	if err := syscall.Kill(procs[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the supervisor gone", func() error {
		if procs[0].Alive() {
			return fmt.Errorf("alive")
		}
		return nil
	}, nil)
	_ = up.wait(t, time.Minute)
	if !procs[1].Alive() {
		t.Fatal("the build died with the supervisor; the test needs it orphaned")
	}
	out, err := s.tug("lab", "down")
	if err != nil || !strings.Contains(out, "was half-dead") || !strings.Contains(out, "build of") {
		t.Fatalf("lab down after the supervisor was killed: %v\n%s", err, out)
	}
	s.nothingLeft(procs)
}

// Two `tug lab up` at once on one lab: one starts the supervisor, the
// other says so and follows it.
func TestTwoUpsAtOnceStartOneSupervisor(t *testing.T) {
	s := newStallLab(t, "twice")
	a, b := s.up(), s.up()
	procs := s.building()
	eventually(t, time.Minute, "both lab ups reporting", func() error {
		starting := strings.Count(a.out.String()+b.out.String(), "Starting lab")
		following := strings.Count(a.out.String()+b.out.String(), "already (supervisor pid "+strconv.Itoa(procs[0].PID))
		if starting != 1 || following != 1 {
			return fmt.Errorf("%d started, %d followed", starting, following)
		}
		return nil
	}, s.describe)
	if out, err := s.tug("lab", "down"); err != nil {
		t.Fatalf("lab down: %v\n%s", err, out)
	}
	s.nothingLeft(procs)
	_ = a.wait(t, time.Minute)
	_ = b.wait(t, time.Minute)
}

// eventually polls cond until it returns nil or timeout passes, then fails
// with cond's last error and what describe shows.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			extra := ""
			if describe != nil {
				extra = "\n" + describe()
			}
			t.Fatalf("%s: not true after %s: %v%s", what, timeout, err, extra)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A full disk under the state folder: `lab up` fails with an error that
// says so, `lab down` still stops a lab that was building when the disk
// filled, and once there is room again the next `up` finds its state
// intact (status.json is replaced whole or not at all) and starts.
func TestFullDiskIsAClearErrorAndCorruptsNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	s := newStallLab(t, "full")
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tug-lab-test", s.root).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	// Cleanups run last-registered first: this one stops the lab and every
	// `lab up` (nothing may hold a file there) before it unmounts;
	// newStallLab's, run again after it, then finds nothing to stop.
	t.Cleanup(func() {
		s.cleanup()
		if out, err := exec.Command("umount", s.root).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", s.root, err, out)
		}
	})
	up := s.up("--background")
	procs := s.building()
	filler := filepath.Join(s.root, "filler")
	fill(t, filler)
	_ = up.cmd.Process.Signal(os.Interrupt)
	_ = up.wait(t, time.Minute)

	out, err := s.tug("lab", "down")
	if err != nil || !strings.Contains(out, "was building") {
		t.Fatalf("lab down with the disk full: %v\n%s", err, out)
	}
	s.nothingLeft(procs)

	third := s.up()
	if err := third.wait(t, time.Minute); err == nil || !strings.Contains(third.out.String(), "no space left on device") {
		t.Fatalf("lab up on a full disk: %v, want an error saying the disk is full:\n%s", err, third.out)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.ReadStatus(s.layout.Dir); err != nil {
		t.Fatalf("status.json after the disk filled: %v", err)
	}
	fourth := s.up("--background")
	procs = s.building()
	if out, err := s.tug("lab", "down"); err != nil || !strings.Contains(out, "was building") {
		t.Fatalf("lab down: %v\n%s", err, out)
	}
	s.nothingLeft(procs)
	// The `up` that follows the lab holds its log open until it sees the
	// supervisor gone; the mount is busy until then.
	_ = fourth.wait(t, time.Minute)
}

// fill writes to path until the disk is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}
