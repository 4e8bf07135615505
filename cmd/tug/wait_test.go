package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tug-gitops/tug/internal/appstatus"
)

func TestWaitTerminateStaleMisuse(t *testing.T) {
	for _, args := range [][]string{
		{"wait", "backend-dev", "--yes"}, // --yes confirms nothing without --terminate-stale
		// go test's stdin is not a terminal, so nobody could answer.
		{"wait", "backend-dev", "--terminate-stale"},
	} {
		if code := run(args); code != exitUsage {
			t.Errorf("tug %v exited %d, want %d", args, code, exitUsage)
		}
	}
}

func TestConfirmTerminateAsksAndSaysWhatItDoes(t *testing.T) {
	s := appstatus.State{App: appstatus.App{Name: "backend-dev", Op: &appstatus.Op{Phase: "Running", Revision: strings.Repeat("2", 40), RetryCount: 2, RetryLimit: 8}},
		Target: strings.Repeat("1", 40), StaleOp: true, Advice: "a sync of 2222222 is still retrying (attempt 2 of 8) …"}
	for _, c := range []struct {
		answer string
		yes    bool
		want   bool
	}{{"y\n", false, true}, {"yes\n", false, true}, {"\n", false, false}, {"n\n", false, false}, {"", false, false}, {"", true, true}} {
		var out bytes.Buffer
		got := confirmTerminate(strings.NewReader(c.answer), &out, c.yes)(s)
		if got != c.want {
			t.Errorf("answer %q yes=%v: terminate=%v, want %v\n%s", c.answer, c.yes, got, c.want, out.String())
		}
		for _, want := range []string{"Terminate the sync of 2222222 on backend-dev", "argocd app terminate-op backend-dev", "syncs 1111111"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the question lacks %q:\n%s", want, out.String())
			}
		}
	}
}
