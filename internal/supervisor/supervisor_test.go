package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a supervisor that the tests kill with
// SIGKILL: with SUPERVISOR_TEST_HELPER set it takes the lock, starts the
// processes, records them and waits to be killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("SUPERVISOR_TEST_HELPER"); dir != "" {
		helper(dir)
		return
	}
	os.Exit(m.Run())
}

func helper(dir string) {
	lock, err := AcquireLock(filepath.Join(dir, "lock"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer lock.Release()
	s := New(Options{})
	var recs []Proc
	for _, name := range []string{"a", "b"} {
		// A shell with a child: the child must go too.
		p, err := s.Start(Spec{Name: name, Path: "sh", Args: []string{"-c", "sleep 300 & echo $! > " + filepath.Join(dir, name+".child") + "; wait"}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		recs = append(recs, p.Status().Proc)
	}
	data, _ := json.Marshal(recs)
	_ = os.WriteFile(filepath.Join(dir, "records.tmp"), data, 0o600)
	_ = os.Rename(filepath.Join(dir, "records.tmp"), filepath.Join(dir, "records.json"))
	select {}
}

// eventually polls cond until it returns nil, failing with its last error
// after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

func newSup(t *testing.T) *Supervisor {
	t.Helper()
	s := New(Options{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

func mustStart(t *testing.T, s *Supervisor, spec Spec) *Process {
	t.Helper()
	p, err := s.Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProcIdentity(t *testing.T) {
	self := Self()
	if self.PID != os.Getpid() || self.Start == 0 || !self.Alive() {
		t.Fatalf("Self() = %+v, alive %v", self, self.Alive())
	}
	// Same pid, another start time: a recycled pid is not the process.
	if (Proc{PID: self.PID, Start: self.Start + 1}).Alive() {
		t.Fatal("a record with another start time counts as alive")
	}
	if (Proc{PID: self.PID}).Alive() {
		t.Fatal("a record without a start time counts as alive")
	}
}

func TestRestartsWithGrowingBackoffThenGivesUp(t *testing.T) {
	dir := t.TempDir()
	stamps := filepath.Join(dir, "stamps")
	s := newSup(t)
	p := mustStart(t, s, Spec{
		Name: "crasher", Path: "sh", Args: []string{"-c", "date +%s%N >> " + stamps + "; exit 3"},
		Log:     filepath.Join(dir, "crasher.log"),
		Restart: Policy{Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxRestarts: 4, Window: time.Minute},
	})
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("not given up on after 20 s: %+v", p.Status())
	}
	st := p.Status()
	if st.State != StateFailed || st.Restarts != 4 || !strings.Contains(st.Error, "exited 5 times") || !strings.Contains(st.Error, "exit status 3") || !strings.Contains(st.Error, "crasher.log") {
		t.Fatalf("status %+v: want failed after 4 restarts, naming the exits, the last status and the log", st)
	}
	data, _ := os.ReadFile(stamps)
	var ts []int64
	for _, f := range strings.Fields(string(data)) {
		n, _ := strconv.ParseInt(f, 10, 64)
		ts = append(ts, n)
	}
	if len(ts) != 5 {
		t.Fatalf("%d runs, want 5: %v", len(ts), ts)
	}
	// Backoff 50, 100, 200, 200 ms (capped): each gap at least that.
	for i, want := range []time.Duration{50, 100, 200, 200} {
		gap := time.Duration(ts[i+1] - ts[i])
		if gap < want*time.Millisecond {
			t.Errorf("restart %d came %s after the exit, want at least %s", i+1, gap, want*time.Millisecond)
		}
	}
}

func TestRestartsKilledProcess(t *testing.T) {
	s := newSup(t)
	p := mustStart(t, s, Spec{Name: "sleeper", Path: "sleep", Args: []string{"300"}, Restart: Policy{Backoff: 10 * time.Millisecond}})
	first := p.Status()
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "restarted", func() error {
		st := p.Status()
		if st.State != StateRunning || st.Restarts != 1 || st.PID == first.PID || !st.Alive() {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if first.Alive() {
		t.Fatal("the killed run counts as alive")
	}
}

func TestNeverPolicyExitIsFinal(t *testing.T) {
	s := newSup(t)
	p := mustStart(t, s, Spec{Name: "once", Path: "sh", Args: []string{"-c", "exit 0"}, Restart: Policy{Never: true}})
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not done")
	}
	if st := p.Status(); st.State != StateExited || st.Restarts != 0 {
		t.Fatalf("%+v", st)
	}
}

// childPID reads the pid a shell wrote for its child.
func childPID(t *testing.T, path string) Proc {
	t.Helper()
	var p Proc
	eventually(t, 10*time.Second, "child pid in "+path, func() error {
		data, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(data), "\n") {
			return fmt.Errorf("%q %v", data, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			return err
		}
		p, err = Identify(pid)
		return err
	})
	return p
}

func TestStopRunningStopsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	s := newSup(t)
	p := mustStart(t, s, Spec{Name: "parent", Path: "sh", Args: []string{"-c", "sleep 300 & echo $! > " + dir + "/child; wait"}})
	child := childPID(t, filepath.Join(dir, "child"))
	leader := p.Status().Proc
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if leader.Alive() || child.Alive() {
		t.Fatalf("after Stop: leader alive %v, child alive %v", leader.Alive(), child.Alive())
	}
	if st := p.Status(); st.State != StateStopped {
		t.Fatalf("state %s, want stopped", st.State)
	}
	if _, err := s.Start(Spec{Name: "late", Path: "sleep", Args: []string{"1"}}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop: %v, want ErrStopped", err)
	}
}

func TestStopDuringBackoffCancelsTheRestart(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	s := New(Options{})
	p := mustStart(t, s, Spec{Name: "crasher", Path: "sh", Args: []string{"-c", "echo run >> " + runs + "; exit 1"}, Restart: Policy{Backoff: 300 * time.Millisecond}})
	eventually(t, 10*time.Second, "in backoff", func() error {
		if st := p.Status(); st.State != StateBackoff {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	// The restart would have come 300 ms after the exit: wait past it by
	// waiting for a process that outlives it, then count the runs.
	if err := exec.Command("sleep", "0.6").Run(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(runs); strings.Count(string(data), "run") != 1 {
		t.Fatalf("ran %d times, want 1 (no restart after Stop)", strings.Count(string(data), "run"))
	}
	if st := p.Status(); st.State != StateStopped {
		t.Fatalf("state %s, want stopped", st.State)
	}
}

func TestStopKillsWhatIgnoresSIGTERMAfterGrace(t *testing.T) {
	dir := t.TempDir()
	s := New(Options{})
	// The shell ignores SIGTERM and so does its child (inherited).
	p := mustStart(t, s, Spec{Name: "stubborn", Path: "sh", Args: []string{"-c", "trap '' TERM; sleep 300 & echo $! > " + dir + "/child; wait"}, Grace: 200 * time.Millisecond})
	// the trap is set before the child's pid is written
	child := childPID(t, filepath.Join(dir, "child"))
	began := time.Now()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 200*time.Millisecond {
		t.Fatalf("stopped in %s, before the grace: SIGTERM was not ignored?", took)
	}
	if p.Status().Alive() || child.Alive() {
		t.Fatal("still alive after Stop")
	}
}

// Stop must not outlast its context, even when a process's grace is longer.
func TestStopHonoursContextDeadline(t *testing.T) {
	s := New(Options{})
	var procs []*Process
	for i := range 3 {
		dir := t.TempDir()
		procs = append(procs, mustStart(t, s, Spec{Name: fmt.Sprint("stubborn", i), Path: "sh", Args: []string{"-c", "trap '' TERM; echo $$ > " + dir + "/ready; while :; do sleep 0.05; done"}, Grace: time.Minute}))
		childPID(t, filepath.Join(dir, "ready"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	_ = s.Stop(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Stop returned after its context's deadline")
	}
	for _, p := range procs {
		if p.Status().Alive() {
			t.Fatalf("%s alive after Stop", p.Name())
		}
	}
}

func TestStopAfterOrdersTheStop(t *testing.T) {
	dir := t.TempDir()
	order := filepath.Join(dir, "order")
	s := New(Options{})
	trap := func(name string) []string {
		return []string{"-c", "trap 'echo " + name + " >> " + order + "; exit 0' TERM; echo $$ > " + dir + "/" + name + "; while :; do sleep 0.05; done"}
	}
	mustStart(t, s, Spec{Name: "store", Path: "sh", Args: trap("store"), StopAfter: []string{"api"}})
	mustStart(t, s, Spec{Name: "api", Path: "sh", Args: trap("api")})
	childPID(t, filepath.Join(dir, "store")) // the traps are set
	childPID(t, filepath.Join(dir, "api"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(order); string(data) != "api\nstore\n" {
		t.Fatalf("stop order %q, want api then store", data)
	}
}

func TestStopAfterGiveUpAndOnExitedProcess(t *testing.T) {
	s := New(Options{})
	p := mustStart(t, s, Spec{Name: "bad", Path: "sh", Args: []string{"-c", "exit 1"}, Restart: Policy{Backoff: time.Millisecond, MaxRestarts: 1}})
	<-p.Done()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop of a given-up process: %v", err)
	}
	if st := p.Status(); st.State != StateFailed {
		t.Fatalf("state %s, want failed kept", st.State)
	}
}

func TestStartErrorNamesTheProgram(t *testing.T) {
	s := New(Options{})
	_, err := s.Start(Spec{Name: "ghost", Path: filepath.Join(t.TempDir(), "no-such-binary")})
	if err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("got %v, want an error naming the process", err)
	}
	if len(s.Status()) != 0 {
		t.Fatal("a process that could not start is listed")
	}
}

func TestLockRecordsItsHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "lock")
	if _, held, err := LockHolder(path); held || err != nil {
		t.Fatalf("no lock file: held %v err %v", held, err)
	}
	l, err := AcquireLock(path)
	if err != nil {
		t.Fatal(err)
	}
	holder, held, err := LockHolder(path)
	if err != nil || !held || holder != Self() {
		t.Fatalf("holder %+v held %v err %v, want this process", holder, held, err)
	}
	var locked *LockedError
	if _, err := AcquireLock(path); !errors.As(err, &locked) || locked.Holder != Self() {
		t.Fatalf("second AcquireLock: %v, want a LockedError naming the holder", err)
	}
	l.Release()
	if _, held, _ := LockHolder(path); held {
		t.Fatal("held after Release")
	}
	again, err := AcquireLock(path)
	if err != nil {
		t.Fatal(err)
	}
	again.Release()
}

// A status file from a run long gone names pids that are now free or
// someone else's: StopAll must leave them alone.
func TestStopAllIgnoresStaleAndRecycledRecords(t *testing.T) {
	bystander := exec.Command("sleep", "300")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bystander.Process.Kill(); _ = bystander.Wait() }()
	real, err := Identify(bystander.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	recycled := Proc{PID: real.PID, Start: real.Start - 1} // an earlier process with this pid
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	stale := Proc{PID: gone.ProcessState.Pid(), Start: 12345}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if left := StopAll(ctx, []Proc{recycled, stale, {}}, time.Second); len(left) != 0 {
		t.Fatalf("StopAll left %v", left)
	}
	if !real.Alive() {
		t.Fatal("StopAll signalled a process whose pid only matched a stale record")
	}
}

// A supervisor killed with SIGKILL leaves its processes (and theirs)
// running and its records behind; the lock goes with it. What it recorded
// is enough to stop everything.
func TestSIGKILLedSupervisorLeavesWhatItsRecordsStop(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sup := exec.Command(self)
	sup.Env = append(os.Environ(), "SUPERVISOR_TEST_HELPER="+dir)
	sup.Stderr = os.Stderr
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	var recs []Proc
	eventually(t, 10*time.Second, "helper's records", func() error {
		data, err := os.ReadFile(filepath.Join(dir, "records.json"))
		if err != nil {
			return err
		}
		return json.Unmarshal(data, &recs)
	})
	children := []Proc{childPID(t, filepath.Join(dir, "a.child")), childPID(t, filepath.Join(dir, "b.child"))}
	holder, held, err := LockHolder(filepath.Join(dir, "lock"))
	if err != nil || !held || holder.PID != sup.Process.Pid {
		t.Fatalf("lock holder %+v held %v err %v, want the helper (pid %d)", holder, held, err, sup.Process.Pid)
	}
	_ = sup.Process.Signal(syscall.SIGKILL)
	_ = sup.Wait()
	if _, held, _ := LockHolder(filepath.Join(dir, "lock")); held {
		t.Fatal("lock still held after its holder was killed")
	}
	for _, p := range append(append([]Proc(nil), recs...), children...) {
		if !p.Alive() {
			t.Fatalf("%v died with the supervisor; the test needs it orphaned", p)
		}
	}
	// The leaders die first (as if they crashed): their children, left in
	// the groups, must still be found and stopped.
	_ = syscall.Kill(recs[0].PID, syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if left := StopAll(ctx, recs, 2*time.Second); len(left) != 0 {
		t.Fatalf("StopAll left %v", left)
	}
	for _, p := range append(recs, children...) {
		if p.Alive() {
			t.Fatalf("%v still alive after StopAll", p)
		}
	}
}

// Cleanups undo host state once no process uses it: after every process
// has exited, the last added first, and their errors are reported.
func TestCleanupsRunAfterTheProcessesInReverse(t *testing.T) {
	s := New(Options{})
	p := mustStart(t, s, Spec{Name: "user", Path: "sleep", Args: []string{"300"}})
	var order []string
	add := func(name string, err error) {
		s.AddCleanup(name, func(context.Context) error {
			if p.Status().Alive() {
				t.Errorf("cleanup %s ran while the process still runs", name)
			}
			order = append(order, name)
			return err
		})
	}
	add("mount", nil)
	add("route", errors.New("no such route"))
	err := s.Stop(context.Background())
	if got := strings.Join(order, ","); got != "route,mount" {
		t.Fatalf("cleanups ran as %s, want route,mount", got)
	}
	if err == nil || !strings.Contains(err.Error(), "cleanup route: no such route") {
		t.Fatalf("Stop = %v, want the failed cleanup named", err)
	}
}
