package main

import "testing"

func TestMisuseExitsTwo(t *testing.T) {
	for _, args := range [][]string{
		{"no-such-command"},
		{"lab", "logs"},                     // missing argument
		{"lab", "up", "--no-such-flag"},     // unknown flag
		{"lab", "status", "-o", "xml"},      // bad output format
		{"lab", "status", "--name", "../x"}, // invalid lab name
	} {
		if code := run(args); code != exitUsage {
			t.Errorf("tug %v exited %d, want %d", args, code, exitUsage)
		}
	}
	if code := run([]string{"version"}); code != exitOK {
		t.Errorf("tug version exited %d", code)
	}
}
