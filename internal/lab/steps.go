package lab

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// step is one part of starting the lab: it runs once every step it comes
// after has succeeded, beside every step it does not depend on.
type step struct {
	name string
	// after names the steps this one needs; each must be declared before
	// it, so the steps cannot wait on each other in a circle.
	after []string
	run   func(ctx context.Context) error
	// hint says what to do when the step fails.
	hint string
}

// stepError is a step's failure: which step, what went wrong, what to do.
type stepError struct {
	step string
	err  error
	hint string
}

func (e *stepError) Error() string {
	s := fmt.Sprintf("step %s: %v", e.step, e.err)
	if e.hint != "" {
		s += "\n" + e.hint
	}
	return s
}

func (e *stepError) Unwrap() error { return e.err }

// hintedError says itself what to do, in place of its step's hint (which
// speaks of the step's usual causes, and would mislead).
type hintedError struct {
	error
	hint string
}

func (e hintedError) Unwrap() error { return e.error }

// runSteps runs the steps, each as soon as those it comes after have
// succeeded. The first failure cancels the context the others run with,
// steps not yet started do not start, and runSteps returns that failure
// once every running step has returned. done is called as each step
// succeeds, with how long it ran.
func runSteps(ctx context.Context, steps []step, done func(name string, took time.Duration)) error {
	finished := make(map[string]chan struct{}, len(steps))
	for _, s := range steps {
		if _, dup := finished[s.name]; dup {
			return fmt.Errorf("lab start: step %s is declared twice", s.name)
		}
		for _, a := range s.after {
			if _, ok := finished[a]; !ok {
				return fmt.Errorf("lab start: step %s comes after %s, which is not declared before it", s.name, a)
			}
		}
		finished[s.name] = make(chan struct{})
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel(err)
	}
	for _, s := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, a := range s.after {
				select {
				case <-finished[a]:
				case <-ctx.Done():
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
			began := time.Now()
			if err := s.run(ctx); err != nil {
				hint := s.hint
				var h hintedError
				if errors.As(err, &h) {
					hint = h.hint
				}
				fail(&stepError{step: s.name, err: err, hint: hint})
				return
			}
			if done != nil {
				done(s.name, time.Since(began))
			}
			close(finished[s.name])
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err() // the caller's context ended before every step ran
}
