package gitea

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/forge"
)

// hungForge is a listener on loopback that accepts connections and never
// answers, as a forge does whose process is stopped (SIGSTOP) or wedged.
// It returns the base URL; the connections are closed at the end of the
// test.
func hungForge(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// within runs f and fails the test if it has not returned after limit:
// the call must end by itself, on the context or the client's timeout.
func within(t *testing.T, limit time.Duration, f func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	select {
	case err := <-errc:
		return err
	case <-time.After(limit):
		t.Fatalf("still waiting on a forge that never answers after %s", limit)
		return nil
	}
}

// A context's deadline ends New against a forge that never answers.
func TestNewHonoursTheContextOnAHungForge(t *testing.T) {
	url := hungForge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := within(t, 10*time.Second, func() error {
		_, err := New(ctx, url, "token", forge.Repo{Owner: "o", Name: "n"})
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New on a hung forge: %v, want the context's deadline", err)
	}
}

// Without a deadline in the context, the HTTP client's own timeout ends
// every call, New and the calls promote makes after it alike.
func TestCallsTimeOutOnAHungForgeWithoutADeadline(t *testing.T) {
	url := hungForge(t)
	hc := forge.NewHTTPClient()
	hc.Timeout = 300 * time.Millisecond
	ctx := context.Background()
	err := within(t, 10*time.Second, func() error {
		_, err := newForge(ctx, url, "token", forge.Repo{Owner: "o", Name: "n"}, hc)
		return err
	})
	if !isTimeout(err) {
		t.Fatalf("New on a hung forge: %v, want a timeout", err)
	}
	// The calls after New, on a forge that hangs once connected to.
	f := &Forge{baseURL: url, token: "token", repo: forge.Repo{Owner: "o", Name: "n"}, mergeWait: time.Second, pause: jittered, http: hc}
	for name, call := range map[string]func() error{
		"FindOpenPullRequest": func() error { _, err := f.FindOpenPullRequest(ctx, "head", "main"); return err },
		"OpenPullRequest": func() error {
			_, _, err := f.OpenPullRequest(ctx, forge.NewPullRequest{Head: "head", Base: "main", Title: "t"})
			return err
		},
		"GetPullRequest":   func() error { _, err := f.GetPullRequest(ctx, 1); return err },
		"MergePullRequest": func() error { _, err := f.MergePullRequest(ctx, 1, "m"); return err },
		"Approve":          func() error { return f.Approve(ctx, 1, "ok") },
	} {
		if err := within(t, 10*time.Second, call); !isTimeout(err) {
			t.Errorf("%s on a hung forge: %v, want a timeout", name, err)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return err != nil && (errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, http.ErrHandlerTimeout))
}

// The default client has the bounds; http.DefaultClient has none.
func TestTheDefaultClientIsBounded(t *testing.T) {
	hc := forge.NewHTTPClient()
	tr, ok := hc.Transport.(*http.Transport)
	if hc.Timeout == 0 || !ok || tr.ResponseHeaderTimeout == 0 || tr.TLSHandshakeTimeout == 0 {
		t.Fatalf("forge HTTP client without timeouts: %+v", hc)
	}
}

// A server the SDK refuses (a Gitea older than 1.11) is an error from New,
// not a nil client that panics on first use. A real Gitea that old cannot
// be built here, so this server only answers /api/v1/version.
func TestAnOldGiteaIsAnErrorNotAPanic(t *testing.T) {
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/version" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"version":"1.10.0"}`))
	}))
	defer old.Close()
	_, err := New(context.Background(), old.URL, "token", forge.Repo{Owner: "o", Name: "n"})
	if err == nil || !strings.Contains(err.Error(), "older than 1.11") {
		t.Fatalf("New on Gitea 1.10: %v, want an error saying it is too old", err)
	}
}
