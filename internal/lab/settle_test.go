package lab

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/tools"
)

// The components settle to settledGOGC, to the user's TUG_SETTLED_GOGC, or
// not at all when the user turned it off or chose GOGC.
func TestSettleEnv(t *testing.T) {
	for _, tc := range []struct {
		gogc, settled string // "" = unset
		want          []string
	}{
		{want: []string{tools.SettledGOGCEnv + "=" + settledGOGC}},
		{settled: "80", want: []string{tools.SettledGOGCEnv + "=80"}},
		{settled: "off"},
		{settled: "-5"},
		{gogc: "100"},
		{gogc: "100", settled: "80"},
	} {
		setOrUnset(t, "GOGC", tc.gogc)
		setOrUnset(t, tools.SettledGOGCEnv, tc.settled)
		if got := settleEnv(); !slices.Equal(got, tc.want) {
			t.Errorf("GOGC=%q %s=%q: %q, want %q", tc.gogc, tools.SettledGOGCEnv, tc.settled, got, tc.want)
		}
	}
}

// setOrUnset sets key to value for the test, or unsets it when value is "".
func setOrUnset(t *testing.T, key, value string) {
	t.Helper()
	t.Setenv(key, value) // restores the variable after the test
	if value == "" {
		os.Unsetenv(key)
	}
}

// The lab settles once it has been quiet for quietLooks looks after work:
// not while it works, not again while it stays quiet (the settle's own
// collections are not work), and again after the next work (a restarted
// component's CPU time going back counts as work).
func TestSettleWatchSettlesWhenQuietAfterWork(t *testing.T) {
	const look = 2 * time.Second
	busy := time.Duration(quietShare*float64(look)) + time.Millisecond
	idle := time.Duration(quietShare*float64(look)) / 2
	w := &settleWatch{}
	cpu := 40 * time.Second
	var got []bool
	step := func(used time.Duration) {
		cpu += used
		got = append(got, w.observe(cpu, look))
	}
	step(0)    // the first look: the start's work
	step(busy) // still working
	step(idle)
	step(idle)
	step(idle) // quiet for quietLooks looks: settle
	step(busy)
	step(busy) // the settle's own collections: not work
	step(idle)
	step(idle)
	step(idle) // still quiet: nothing more
	step(busy)
	step(idle)
	step(idle)
	step(idle) // quiet again after work: settle
	step(idle)
	step(idle)
	cpu = time.Second
	step(0) // a component restarted: work
	step(idle)
	step(idle)
	step(idle) // settle
	want := []bool{false, false, false, false, true, false, false, false, false, false, false, false, false, true, false, false, false, false, false, true}
	if !slices.Equal(got, want) {
		t.Errorf("settles at looks %v, want %v", got, want)
	}
}
