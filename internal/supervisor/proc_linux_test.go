package supervisor

import (
	"os"
	"testing"
	"time"
)

// CPUTime follows the CPU a process uses: this one's grows while it
// computes (the kernel counts in 10 ms ticks).
func TestCPUTimeGrowsWithWork(t *testing.T) {
	before := CPUTime(os.Getpid())
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for CPUTime(os.Getpid()) < before+50*time.Millisecond {
		for i := range 1_000_000 {
			x += i
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPUTime stayed at %s (from %s) after 10 s of computing", CPUTime(os.Getpid()), before)
		}
	}
	if CPUTime(-1) != 0 {
		t.Error("CPUTime of no process is not 0")
	}
	_ = x
}
