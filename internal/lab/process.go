package lab

import (
	"context"
	"fmt"
	"time"

	"github.com/tug-gitops/tug/internal/supervisor"
)

// component is one program the lab runs: what the supervisor starts, and
// how the lab tells it serves. The restart policy is the supervisor's
// default: after 0.5 s, doubling to 10 s, given up on after more than 5
// exits in 2 minutes (reported by `tug lab status` and in the log).
type component struct {
	Name   string
	Binary string
	Args   []string
	Env    []string
	Dir    string
	// Ports the component listens on, by purpose ("https", "metrics"…).
	Ports map[string]int
	// Ready reports nil once the component serves.
	Ready func(ctx context.Context) error
	// StopAfter names components to stop before this one (its clients).
	StopAfter []string
}

// startComponent starts c under the lab's supervisor; several goroutines
// start components at once.
func (l *Lab) startComponent(c component) error {
	l.mu.Lock()
	l.comps[c.Name] = c
	l.mu.Unlock()
	_, err := l.sup.Start(supervisor.Spec{
		Name: c.Name, Path: c.Binary, Args: c.Args, Env: c.Env, Dir: c.Dir,
		Log: l.layout.Log(c.Name), StopAfter: c.StopAfter,
	})
	return err
}

// run starts c and waits until it is ready.
func (l *Lab) run(ctx context.Context, c component) error {
	if err := l.startComponent(c); err != nil {
		return err
	}
	return l.waitReady(ctx, c.Name, 60*time.Second)
}

// waitReady polls the named component's readiness until it passes, the
// supervisor gives up on it, or the timeout passes; on failure the error
// carries the component's log tail.
func (l *Lab) waitReady(ctx context.Context, name string, timeout time.Duration) error {
	l.mu.Lock()
	c, ok := l.comps[name]
	l.mu.Unlock()
	p := l.sup.Get(name)
	if !ok || p == nil {
		return fmt.Errorf("no component %q in this lab", name)
	}
	if c.Ready == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if err := p.Err(); err != nil {
			return err
		}
		if last = c.Ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v\n--- last lines of %s ---\n%s", name, timeout, last, l.layout.Log(name), supervisor.LogTail(l.layout.Log(name), 25))
		case <-p.Exited():
			// Exited: the supervisor restarts it; keep polling.
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
}
