package lab

import (
	"os"
	"slices"
	"testing"

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
