package lab

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/tug-gitops/tug/internal/supervisor"
	"github.com/tug-gitops/tug/internal/tools"
)

// settledGOGC is the garbage collector's target the components carrying
// tug's settle handler (tools.Settles) take once the lab is ready: the
// start runs at componentGOGC because it is CPU-bound, and a ready lab is
// mostly idle, so the headroom that bought start time is then only
// resident memory. At 50 a heap grows to one and a half times what is
// live before it is collected, instead of three times.
const settledGOGC = "50"

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
// to collect, return the freed memory to the OS and keep settledGOGC from
// now on, and does so itself. It signals the component's own process, never its group (the
// repo-server's git and helm), and only the run it started: a component
// the supervisor restarts later runs at componentGOGC until the next
// 'lab up'.
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
	// The supervisor, this process, settles the same way.
	gogc, _ := strconv.Atoi(strings.TrimPrefix(settleEnv()[0], tools.SettledGOGCEnv+"="))
	debug.SetGCPercent(gogc)
	debug.FreeOSMemory()
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
