package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/tug-gitops/tug/internal/fsutil"
)

// Argo CD needs Redis as a cache. The lab uses the system's redis-server
// when one is on PATH, as a supervised process; otherwise it serves an
// embedded Redis (miniredis, the one Argo CD's own tests use) from the
// supervisor itself. Either way it listens on loopback and requires the
// password stored in the argocd-redis Secret, as upstream does.

// redisKind names which Redis the lab runs, for `tug lab status`.
const (
	redisSystem   = "system redis-server"
	redisEmbedded = "embedded (miniredis)"
)

// startRedis starts Redis on port with password and returns its kind.
func (l *Lab) startRedis(ctx context.Context, port int, password string) (string, error) {
	if bin, err := exec.LookPath("redis-server"); err == nil && os.Getenv("TUG_LAB_EMBEDDED_REDIS") == "" {
		dir := l.layout.ComponentDir("redis")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		conf := fmt.Sprintf("bind 127.0.0.1\nport %d\nrequirepass %s\nsave \"\"\nappendonly no\ndir %s\nprotected-mode yes\n", port, password, dir)
		confPath := filepath.Join(dir, "redis.conf")
		if err := fsutil.WriteFileAtomic(confPath, []byte(conf), 0o600); err != nil {
			return "", err
		}
		c := component{Name: "redis", Binary: bin, Args: []string{confPath}, Env: l.baseEnv(), Dir: dir,
			Ports: map[string]int{"redis": port}, Ready: tcpReady(port)}
		return redisSystem, l.run(ctx, c)
	}
	m := miniredis.NewMiniRedis()
	m.RequireAuth(password)
	if err := m.StartAddr("127.0.0.1:" + strconv.Itoa(port)); err != nil {
		return "", fmt.Errorf("embedded redis on 127.0.0.1:%d: %w", port, err)
	}
	// miniredis counts keys' time to live down only when told time has
	// passed (FastForward); without this, Argo CD's caches — the
	// repo-server's branch lookups among them — would never expire and
	// polling would never see a new commit.
	stop := make(chan struct{})
	go func() {
		const tick = 500 * time.Millisecond
		t := time.NewTicker(tick)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	l.mu.Lock()
	l.closers = append(l.closers, func(context.Context) { close(stop); m.Close() })
	l.mu.Unlock()
	return redisEmbedded, nil
}
