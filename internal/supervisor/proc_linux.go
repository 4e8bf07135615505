package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

type stat struct {
	state byte
	pgrp  int
	start uint64
	cpu   uint64 // utime + stime + cutime + cstime, in clock ticks
}

// readStat reads /proc/<pid>/stat. Its second field, the command name in
// parentheses, may hold spaces and parentheses itself, so the fields are
// counted from the last ')'.
func readStat(pid int) (stat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// After ')': field 3 (state) onwards.
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return stat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	pgrp, err := strconv.Atoi(f[2]) // field 5
	if err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: pgrp: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64) // field 22
	if err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	var cpu uint64
	for _, v := range f[11:15] { // fields 14-17: utime, stime, cutime, cstime
		n, _ := strconv.ParseUint(v, 10, 64)
		cpu += n
	}
	return stat{state: f[0][0], pgrp: pgrp, start: start, cpu: cpu}, nil
}

// groupMembers lists the live processes in process group pgid.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.pgrp == pgid && st.state != 'Z' && st.state != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// Cmdline returns a process's command line, arguments separated by spaces.
func Cmdline(pid int) string {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

// RSS returns a process's resident memory in bytes (0 if unknown).
func RSS(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// clockTicks is the unit of /proc/<pid>/stat's CPU times (USER_HZ), 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// CPUTime returns the CPU time a process and its reaped children have used
// (user and system; 0 if unknown).
func CPUTime(pid int) time.Duration {
	st, err := readStat(pid)
	if err != nil {
		return 0
	}
	return time.Duration(st.cpu) * time.Second / clockTicks
}
