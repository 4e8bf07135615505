package main

import "testing"

func TestReleaseCLI(t *testing.T) {
	for _, args := range [][]string{
		{"release"},                                        // no APP
		{"release", "backend", "frontend"},                 // two
		{"release", "backend", "-o", "xml", "--dry-run"},   // bad output format
		{"release", "backend", "--tag", "-x", "--dry-run"}, // not a tag
	} {
		if code := run(args); code != exitUsage {
			t.Errorf("tug %v exited %d, want %d", args, code, exitUsage)
		}
	}
	// A dry run from this repository: builds the image, prints the change.
	if code := run([]string{"release", "backend", "--dry-run", "--repo-dir", "../..", "-o", "json"}); code != exitOK {
		t.Errorf("tug release backend --dry-run exited %d", code)
	}
	// No such service: a failure, not misuse.
	if code := run([]string{"release", "nosuch", "--dry-run", "--repo-dir", "../.."}); code != exitFailure {
		t.Errorf("tug release nosuch --dry-run exited %d, want %d", code, exitFailure)
	}
}
