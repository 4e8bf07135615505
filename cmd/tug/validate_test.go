package main

import "testing"

func TestValidateExitCodes(t *testing.T) {
	bad := "../../internal/validate/testdata/bad/"
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"validate", bad + "ok"}, exitOK},
		{[]string{"validate", bad + "dest-port-443"}, exitFailure},
		{[]string{"validate", "-o", "json", bad + "dest-port-443"}, exitFailure},
		{[]string{"validate", bad + "manifest-unknown-kind"}, exitOK},                  // a warning
		{[]string{"validate", "--strict", bad + "manifest-unknown-kind"}, exitFailure}, // warnings fail with --strict
		{[]string{"validate", bad + "source-external-info"}, exitFailure},
		{[]string{"validate", "-o", "xml", bad + "ok"}, exitUsage},
		{[]string{"validate", bad + "does-not-exist"}, exitUsage},
		{[]string{"validate", "--list-rules"}, exitOK},
	} {
		if got := run(tc.args); got != tc.want {
			t.Errorf("tug %v: exit %d, want %d", tc.args, got, tc.want)
		}
	}
}
