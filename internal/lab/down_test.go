package lab

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/supervisor"
)

// startGroup starts a process in a group of its own, as the supervisor
// starts components, and reaps it when it ends.
func startGroup(t *testing.T, args ...string) supervisor.Proc {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	p, err := supervisor.Identify(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitDead(t *testing.T, p supervisor.Proc) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	return true
}

// A supervisor that died left a component and a build running, and its
// status file also names a pid the kernel has since given to another
// process: Down stops the two, says the lab was half-dead, and leaves the
// other process alone.
func TestDownStopsWhatADeadSupervisorRecorded(t *testing.T) {
	dir := t.TempDir()
	comp := startGroup(t, "sleep", "300")
	build := startGroup(t, "sh", "-c", "sleep 300 & wait")
	bystander := startGroup(t, "sleep", "300")
	st := &Status{Name: "t", StateDir: dir, Phase: PhaseReady, Supervisor: 1, SupervisorStart: 1,
		Build: &BuildStatus{Tool: "kine", Proc: build},
		Components: []ComponentStatus{
			{Name: "kube-apiserver", PID: comp.PID, StartTime: comp.Start},
			{Name: "kine", PID: bystander.PID, StartTime: bystander.Start + 1}, // a recycled pid
		}}
	if err := writeStatus(dir, st); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Down(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Was != "half-dead" || res.Supervisor != 0 || len(res.Leftovers) != 2 || !strings.Contains(strings.Join(res.Leftovers, ","), "build of kine") {
		t.Fatalf("Down = %+v, want half-dead with the build and kube-apiserver stopped", res)
	}
	if !waitDead(t, comp) || !waitDead(t, build) {
		t.Fatal("a recorded process still runs after Down")
	}
	if !bystander.Alive() {
		t.Fatal("Down killed a process whose pid only matched a stale record")
	}
	after, err := ReadStatus(dir)
	if err != nil || after.Phase != PhaseStopped || after.Build != nil {
		t.Fatalf("status after Down: %+v, %v", after, err)
	}
	// Again: nothing runs now.
	if res, err := Down(ctx, dir); err != nil || res.Was != PhaseStopped || len(res.Leftovers) != 0 {
		t.Fatalf("second Down = %+v, %v", res, err)
	}
}

func TestDownWithoutALab(t *testing.T) {
	_, err := Down(context.Background(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "start one with 'tug lab up'") {
		t.Fatalf("Down on an empty folder: %v", err)
	}
}

// A live supervisor holding the lock is asked to stop (SIGTERM), and Down
// waits until it lets go; the status file's phase is what Down reports.
func TestDownStopsTheLockHolder(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	holder := exec.Command(self, "-test.run=^TestHelperHoldLock$")
	holder.Env = append(os.Environ(), "LAB_TEST_HOLD_LOCK="+dir)
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = holder.Wait(); close(done) }()
	var h supervisor.Proc
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := ReadStatus(dir)
		if err == nil && st.Supervisor == holder.Process.Pid {
			h = supervisor.Proc{PID: st.Supervisor, Start: st.SupervisorStart}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the helper did not take the lock")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Down(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Was != PhaseBuilding || res.Supervisor != h.PID || res.Killed {
		t.Fatalf("Down = %+v, want the building supervisor stopped by SIGTERM", res)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the helper still runs")
	}
}

// TestHelperHoldLock plays a supervisor building the programs, for
// TestDownStopsTheLockHolder: it holds the lock until SIGTERM.
func TestHelperHoldLock(t *testing.T) {
	dir := os.Getenv("LAB_TEST_HOLD_LOCK")
	if dir == "" {
		t.Skip("helper process only")
	}
	lock, err := supervisor.AcquireLock(Layout{Dir: dir}.Lock())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	self := supervisor.Self()
	if err := writeStatus(dir, &Status{Name: "t", StateDir: dir, Phase: PhaseBuilding, Supervisor: self.PID, SupervisorStart: self.Start}); err != nil {
		t.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
}
