package lab

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/tug-gitops/tug/internal/supervisor"
	"github.com/tug-gitops/tug/internal/tools"
)

// settledGOGC is the garbage collector's target the components carrying
// tug's settle handler (tools.Settles) keep when they settle: by default
// the start's own, componentGOGC, so that settling only collects and
// returns the freed memory to the OS, and a sync or a rollout runs as fast
// as at the start. A lower target, chosen in TUG_SETTLED_GOGC, keeps less
// memory between settles at the cost of more collections (docs/lab.md
// measures 50).
const settledGOGC = componentGOGC

// The lab settles once it has gone quiet after working: when, at
// quietLooks looks in a row (Supervise looks every superviseEvery), its processes
// together used less than quietShare of one core. A ready lab is mostly
// idle, and the heap headroom that bought speed is then only resident
// memory; settling while it works (a sync, a rollout) would cost that
// work a collection in every component at once.
const (
	quietShare = 0.25
	quietLooks = 3
)

// settleLooks is how many looks after a settle see its own collections,
// which are not the lab's work (or it would settle again and again).
const settleLooks = 2

// settleWatch decides when to settle from the lab's CPU time.
type settleWatch struct {
	last    time.Duration // the lab's CPU time at the last look
	looked  bool
	quiet   int  // looks in a row below quietShare
	pending bool // worked since the last settle
	ignore  int  // looks left that see the last settle's own work
}

// observe takes the lab's CPU time now, interval after the last look, and
// reports whether to settle now.
func (w *settleWatch) observe(cpu, interval time.Duration) bool {
	used := cpu - w.last
	first := !w.looked
	w.last, w.looked = cpu, true
	if w.ignore > 0 && used >= 0 {
		w.ignore--
		return false
	}
	// A component restarted since (its CPU time starts again at zero) is
	// work too.
	if first || used < 0 || float64(used) > quietShare*float64(interval) {
		w.pending, w.quiet = true, 0
		return false
	}
	w.quiet++
	if w.pending && w.quiet >= quietLooks {
		w.pending, w.ignore = false, settleLooks
		return true
	}
	return false
}

// cpuTime is the CPU time the supervisor and its components' processes
// (with their reaped children) have used.
func (l *Lab) cpuTime() time.Duration {
	total := supervisor.CPUTime(os.Getpid())
	for _, st := range l.sup.Status() {
		if st.State == supervisor.StateRunning {
			total += supervisor.CPUTime(st.PID)
		}
	}
	return total
}

// settleEnv arms a component's settle handler with settledGOGC, or with
// the target the user chose in TUG_SETTLED_GOGC ("off": nothing settles).
// With GOGC set by the user, that target holds from start to end.
func settleEnv() []string {
	if _, set := os.LookupEnv("GOGC"); set {
		return nil
	}
	gogc := settledGOGC
	if v := os.Getenv(tools.SettledGOGCEnv); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n <= 0 {
			return nil // "off", or not a target
		}
		gogc = v
	}
	return []string{tools.SettledGOGCEnv + "=" + gogc}
}

// settle tells every running component that carries the settle handler
// to collect, return the freed memory to the OS and keep its settled
// target from now on, and returns the supervisor's own freed memory. It
// signals the component's own process, never its group (the repo-server's
// git and helm). A component restarted since the last settle is signalled
// too: the Go runtime ignores the signal until the handler is installed.
func (l *Lab) settle() {
	if settleEnv() == nil {
		return
	}
	l.mu.Lock()
	var names []string
	for name, c := range l.comps {
		if tools.Settles(tools.Tool(filepath.Base(c.Binary))) {
			names = append(names, name)
		}
	}
	l.mu.Unlock()
	debug.FreeOSMemory()
	l.opts.Log.Info("lab quiet: components settled", "components", len(names))
	for _, name := range names {
		p := l.sup.Get(name)
		if p == nil {
			continue
		}
		if st := p.Status(); st.State == supervisor.StateRunning {
			if err := st.Proc.Signal(tools.SettleSignal); err != nil {
				l.opts.Log.Debug("settle", "component", name, "err", err)
			}
		}
	}
}
