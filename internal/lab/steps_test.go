package lab

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Each step runs after those it needs, and steps that need nothing of each
// other run at once: here a and b each wait for the other to have begun,
// which only a concurrent run lets finish.
func TestStepsRunByTheirDependencies(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(name string) {
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
	}
	aBegan, bBegan := make(chan struct{}), make(chan struct{})
	meet := func(mine, other chan struct{}) func(context.Context) error {
		return func(ctx context.Context) error {
			close(mine)
			select {
			case <-other:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var done []string
	err := runSteps(ctx, []step{
		{name: "first", run: func(context.Context) error { note("first"); return nil }},
		{name: "a", after: []string{"first"}, run: meet(aBegan, bBegan)},
		{name: "b", after: []string{"first"}, run: meet(bBegan, aBegan)},
		{name: "last", after: []string{"a", "b"}, run: func(context.Context) error { note("last"); return nil }},
	}, func(name string, _ time.Duration) { mu.Lock(); done = append(done, name); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"first", "last"}) {
		t.Errorf("ran %v, want first before last", order)
	}
	if len(done) != 4 || done[0] != "first" || done[3] != "last" {
		t.Errorf("done reported %v", done)
	}
}

// A failure names its step and says what to do; what comes after it never
// runs, and what runs beside it is cancelled.
func TestStepFailureNamesTheStepAndStopsTheRest(t *testing.T) {
	boom := errors.New("boom")
	var after, besideEnded bool
	err := runSteps(context.Background(), []step{
		{name: "beside", run: func(ctx context.Context) error {
			<-ctx.Done()
			besideEnded = true
			return ctx.Err()
		}},
		{name: "broken", run: func(context.Context) error { return boom }, hint: "Look at its log."},
		{name: "after", after: []string{"broken"}, run: func(context.Context) error { after = true; return nil }},
	}, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "step broken: boom") || !strings.Contains(msg, "Look at its log.") {
		t.Errorf("the error does not name the step and say what to do: %q", msg)
	}
	if after {
		t.Error("a step after the failed one ran")
	}
	if !besideEnded {
		t.Error("the step beside the failed one was not cancelled")
	}
}

// An error that says what to do itself replaces the step's usual hint,
// which would point at the wrong cause.
func TestStepErrorWithItsOwnHint(t *testing.T) {
	taken := errors.New("the slot is taken")
	err := runSteps(context.Background(), []step{
		{name: "prepare", run: func(context.Context) error {
			return hintedError{taken, "Stop the other one."}
		}, hint: "Check the folder is writable."},
	}, nil)
	if !errors.Is(err, taken) {
		t.Fatalf("err %v, want the slot error", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "Stop the other one.") || strings.Contains(msg, "writable") {
		t.Errorf("want the error's own hint in place of the step's: %q", msg)
	}
}

// A step may only come after one declared before it: no cycle, no typo.
func TestStepsRefuseUnknownDependency(t *testing.T) {
	err := runSteps(context.Background(), []step{
		{name: "a", after: []string{"b"}, run: func(context.Context) error { return nil }},
		{name: "b", run: func(context.Context) error { return nil }},
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "step a comes after b, which is not declared before it") {
		t.Fatalf("err %v", err)
	}
}

// Cancelling the caller's context stops the steps and is reported.
func TestStepsStopWithTheirContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := false
	err := runSteps(ctx, []step{
		{name: "wait", run: func(ctx context.Context) error { cancel(); <-ctx.Done(); return ctx.Err() }},
		{name: "next", after: []string{"wait"}, run: func(context.Context) error { ran = true; return nil }},
	}, nil)
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("err %v, next ran %v", err, ran)
	}
}

// The lab's own graph is well formed, for either node.
func TestLabStartStepsAreWellFormed(t *testing.T) {
	for _, node := range []string{NodeFake, NodeReal} {
		l := &Lab{opts: Options{Name: "t", Node: node}}
		steps := l.startSteps()
		for i := range steps {
			steps[i].run = func(context.Context) error { return nil }
		}
		if err := runSteps(context.Background(), steps, nil); err != nil {
			t.Errorf("%s node: %v", node, err)
		}
	}
}
