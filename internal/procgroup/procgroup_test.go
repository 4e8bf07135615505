//go:build unix

package procgroup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A cancelled command's child, which runs on after its parent when only
// the parent is killed, is killed with it.
func TestCancelKillsTheChildren(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "sh", "-c", "sleep 300 & echo $! > "+pidFile+"; wait")
	Own(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := waitForPid(t, pidFile)
	cancel()
	if err := cmd.Wait(); err == nil {
		t.Fatal("the cancelled command reported success")
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still runs 10 s after its group was killed", child)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

func waitForPid(t *testing.T, file string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(file)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command wrote no child pid to %s within 10 s", file)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}

// alive reports whether pid runs and is not a zombie waiting for its
// (killed) parent's reaper.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}
