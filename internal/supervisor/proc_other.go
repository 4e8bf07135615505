//go:build !linux

package supervisor

import (
	"errors"
	"hash/fnv"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

type stat struct {
	state byte
	pgrp  int
	start uint64
}

// readStat asks ps(1), which every Unix has, for the process's state,
// group and start time (hashed: only equality matters).
func readStat(pid int) (stat, error) {
	out, err := exec.Command("ps", "-o", "stat=,pgid=,lstart=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return stat{}, err
	}
	f := strings.Fields(string(out))
	if len(f) < 3 {
		return stat{}, errors.New("ps: unexpected output")
	}
	pgrp, _ := strconv.Atoi(f[1])
	h := fnv.New64a()
	h.Write([]byte(strings.Join(f[2:], " ")))
	return stat{state: f[0][0], pgrp: pgrp, start: h.Sum64() | 1}, nil
}

func groupMembers(pgid int) []int {
	out, err := exec.Command("ps", "-A", "-o", "pid=,pgid=").Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] == strconv.Itoa(pgid) {
			if pid, err := strconv.Atoi(f[0]); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// Cmdline returns a process's command line.
func Cmdline(pid int) string {
	out, _ := exec.Command("ps", "-o", "command=", "-p", strconv.Itoa(pid)).Output()
	return strings.TrimSpace(string(out))
}

// RSS returns a process's resident memory in bytes (0 if unknown).
func RSS(pid int) int64 {
	out, _ := exec.Command("ps", "-o", "rss=", "-p", strconv.Itoa(pid)).Output()
	kb, _ := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	return kb << 10
}

// CPUTime is not measured here: 0, so the lab, seeing no work, settles
// once after its start.
func CPUTime(pid int) time.Duration { return 0 }
