package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return NewLogger(io.Discard) }

func TestAddr(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if got := Addr(getenv); got != ":8080" {
		t.Errorf("Addr without PORT = %q, want :8080", got)
	}
	env["PORT"] = "9090"
	if got := Addr(getenv); got != ":9090" {
		t.Errorf("Addr with PORT=9090 = %q, want :9090", got)
	}
}

func TestRouter(t *testing.T) {
	rt := Router{"/ok": func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fine") }}
	tests := []struct {
		method, path string
		status       int
		wantAllow    bool
	}{
		{"GET", "/ok", 200, false},
		{"HEAD", "/ok", 200, false},
		{"POST", "/ok", 405, true},
		{"DELETE", "/ok", 405, true},
		{"GET", "/missing", 404, false},
		{"GET", "/ok/", 404, false},
		{"GET", "/OK", 404, false},
		{"POST", "/missing", 404, false}, // unknown path wins over wrong method
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rt.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("Allow"); (got != "") != tc.wantAllow {
				t.Errorf("Allow header = %q, want set=%v", got, tc.wantAllow)
			}
			if tc.status >= 400 {
				var body ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatalf("error body is not JSON: %v: %q", err, rec.Body)
				}
				if body.Status != tc.status || body.Error == "" {
					t.Errorf("error body = %+v, want status %d and a message", body, tc.status)
				}
			}
		})
	}
}

func TestLogRequestsRecordsStatus(t *testing.T) {
	var buf bytes.Buffer
	h := LogRequests(NewLogger(&buf), Router{})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nowhere", nil))

	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line is not JSON: %v: %q", err, buf.String())
	}
	if line["msg"] != "request" || line["path"] != "/nowhere" || line["status"] != float64(404) {
		t.Errorf("log line = %v, want msg=request path=/nowhere status=404", line)
	}
}

// startRun runs Run on a loopback listener with handler h and returns the
// base URL and a channel that receives Run's result.
func startRun(t *testing.T, ctx context.Context, h http.Handler, stop Shutdown) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, NewServer(h, quietLogger()), ln, stop, quietLogger()) }()
	return "http://" + ln.Addr().String(), done
}

// waitRefused polls until a new connection to addr is refused, i.e. the
// server has closed its listener and begun shutting down.
func waitRefused(t *testing.T, baseURL string) {
	t.Helper()
	addr := strings.TrimPrefix(baseURL, "http://")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(5 * time.Millisecond) // poll interval, not a stand-in for a condition
	}
	t.Fatalf("listener at %s still accepts connections after shutdown began", addr)
}

func TestRunFinishesInFlightRequestOnShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	slow := Router{"/slow": func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := startRun(t, ctx, slow, Shutdown{Timeout: 5 * time.Second})

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()

	<-entered
	cancel() // what SIGTERM does through signal.NotifyContext
	waitRefused(t, base)

	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a request was still in flight", err)
	default:
	}
	close(release)

	r := <-got
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: body %q, err %v; want it to complete", r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after clean shutdown = %v, want nil", err)
	}
}

func TestRunReportsShutdownDeadline(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	stuck := Router{"/stuck": func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	base, done := startRun(t, ctx, stuck, Shutdown{Timeout: 50 * time.Millisecond})
	go func() {
		if resp, err := http.Get(base + "/stuck"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	err := <-done
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run with a stuck request = %v, want a deadline error", err)
	}
}

func TestListenAndRunReportsBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = ListenAndRun(context.Background(), ln.Addr().String(), Router{}, quietLogger())
	if err == nil || !strings.Contains(err.Error(), "PORT") {
		t.Fatalf("ListenAndRun on a busy port = %v, want an error that mentions PORT", err)
	}
}

// Once its context ends a server drains: a kept-alive connection is closed
// rather than reused, new connections are still answered, each response
// telling the client not to reuse the connection, and only then does the
// listener close.
func TestRunDrainsBeforeClosing(t *testing.T) {
	ok := Router{"/ok": func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fine") }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := startRun(t, ctx, ok, Shutdown{Drain: 2 * time.Second, Timeout: time.Second})

	kept, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	if _, err := io.WriteString(kept, "GET /ok HTTP/1.1\r\nHost: shop\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(kept)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("before the drain the server already refused to keep the connection alive")
	}

	cancel() // what SIGTERM does through signal.NotifyContext
	if err := kept.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if b, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the idle kept-alive connection was not closed by the drain: read %q, %v", b, err)
	}

	resp, err = http.Get(base + "/ok")
	if err != nil {
		t.Fatalf("a new connection during the drain: %v; want it answered", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "fine" || !resp.Close {
		t.Fatalf("during the drain: %d %q, Connection: close %t; want 200 \"fine\" and close", resp.StatusCode, body, resp.Close)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) during its drain", err)
	default:
	}

	waitRefused(t, base)
	if err := <-done; err != nil {
		t.Fatalf("Run after the drain and a clean shutdown = %v, want nil", err)
	}
}
