package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tug-gitops/tug/apps/internal/serve"

	"github.com/tug-gitops/tug/apps/internal/servetest"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestInfoReportsVersionAndEnvironment(t *testing.T) {
	cfg := configFromEnv(envOf(map[string]string{"APP_VERSION": "0.2.0", "APP_ENV": "dev"}))
	rec := httptest.NewRecorder()
	newHandler(cfg).ServeHTTP(rec, httptest.NewRequest("GET", "/api/info", nil))

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got Info
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body is not JSON: %v: %q", err, rec.Body)
	}
	want := Info{Service: "backend", Version: "0.2.0", Environment: "dev"}
	if got != want {
		t.Errorf("info = %+v, want %+v", got, want)
	}
}

func TestUnsetEnvironmentShowsUnknown(t *testing.T) {
	cfg := configFromEnv(envOf(nil))
	if cfg.Version != "unknown" || cfg.Environment != "unknown" {
		t.Errorf("config without env = %+v, want unknown/unknown", cfg)
	}
}

func TestRoutes(t *testing.T) {
	h := newHandler(Config{Version: "1", Environment: "test"})
	tests := []struct {
		method, target string
		status         int
	}{
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"HEAD", "/api/info", 200},
		{"GET", "/api/info?verbose=1", 200},
		{"POST", "/api/info", 405},
		{"PUT", "/healthz", 405},
		{"DELETE", "/readyz", 405},
		{"GET", "/", 404},
		{"GET", "/api/info/", 404},
		{"GET", "/api/../healthz", 404}, // no redirect to a cleaned path
		{"GET", "//api/info", 404},
		{"GET", "/api/info%00", 404},
		{"GET", "/" + strings.Repeat("a", 4096), 404},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target[:min(len(tc.target), 40)], func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tc.status, rec.Body)
			}
			if tc.status >= 400 {
				var e serve.ErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Status != tc.status {
					t.Errorf("error body = %q (%v), want JSON with status %d", rec.Body, err, tc.status)
				}
			}
		})
	}
}

// TestRunServesAndStops runs the whole program on a free port, makes a real
// request (including one net/http's client would refuse to send), and stops
// it the way SIGTERM does.
func TestRunServesAndStops(t *testing.T) {
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs servetest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, envOf(map[string]string{"PORT": port, "APP_VERSION": "0.1.0", "APP_ENV": "prod"}), &logs)
	}()

	base := "http://127.0.0.1:" + port
	resp := waitForServer(t, base+"/api/info")
	var got Info
	err := json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || got.Version != "0.1.0" || got.Environment != "prod" {
		t.Fatalf("/api/info = %+v (%v), want version 0.1.0 env prod", got, err)
	}

	// A malformed request target gets a 400 from net/http, not a crash.
	if status := rawStatus(t, "127.0.0.1:"+port, "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n"); status != 400 {
		t.Errorf("malformed path: status %d, want 400", status)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after shutdown = %v, want nil", err)
	}
	if !strings.Contains(logs.String(), `"msg":"request"`) || !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("logs lack request and stopped lines:\n%s", logs.String())
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// waitForServer polls url until it answers, with a deadline.
func waitForServer(t *testing.T, url string) *http.Response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("server at %s did not come up: %v", url, err)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// rawStatus sends a raw HTTP request and returns the response status code.
func rawStatus(t *testing.T, addr, raw string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
