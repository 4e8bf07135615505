package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tug-gitops/tug/apps/internal/serve"

	"github.com/tug-gitops/tug/apps/internal/servetest"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func noLog(string, ...any) {}

// fakeBackend is a real HTTP server standing in for the backend's /api/info.
func fakeBackend(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func infoJSON(version, env string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/info" {
			http.NotFound(w, r)
			return
		}
		serve.WriteJSON(w, 200, BackendInfo{Service: "backend", Version: version, Environment: env})
	}
}

func frontendCfg(backendURL string) Config {
	return Config{Version: "0.2.0", Environment: "dev", BackendURL: backendURL, BackendTimeout: 2 * time.Second}
}

// getPage renders GET / against cfg and returns status and body.
func getPage(t *testing.T, cfg Config) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	newHandler(cfg, &http.Client{}, noLog).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestPageShowsBothVersions(t *testing.T) {
	status, body, hdr := getPage(t, frontendCfg(fakeBackend(t, infoJSON("0.1.0", "dev"))))
	if status != 200 {
		t.Fatalf("status = %d, want 200", status)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	for _, want := range []string{`<td id="frontend-version">0.2.0</td>`, `<td id="backend-version">0.1.0</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "unreachable") {
		t.Errorf("page says unreachable although the backend answered:\n%s", body)
	}
}

// TestPageWhenBackendFails covers every way the backend call can go wrong:
// the page must still render (200) and say what happened.
func TestPageWhenBackendFails(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens on this URL any more

	tests := []struct {
		name       string
		backendURL string
		timeout    time.Duration
		wantReason string
	}{
		{"down", closed.URL, 0, "unreachable"},
		{"http 500", fakeBackend(t, func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "boom", 500)
		}), 0, "500 Internal Server Error"},
		{"http 404", fakeBackend(t, http.NotFound), 0, "404 Not Found"},
		{"garbage json", fakeBackend(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "{not json")
		}), 0, "not /api/info JSON"},
		{"html instead of json", fakeBackend(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "<html>proxy error</html>")
		}), 0, "not /api/info JSON"},
		{"wrong json type", fakeBackend(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, `{"version": 42}`)
		}), 0, "not /api/info JSON"},
		{"no version", fakeBackend(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, `{"service":"backend"}`)
		}), 0, "without a version"},
		{"empty body", fakeBackend(t, func(http.ResponseWriter, *http.Request) {}), 0, "not /api/info JSON"},
		{"oversized body", fakeBackend(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = fmt.Fprintf(w, `{"version":"%s"}`, strings.Repeat("9", 2*maxInfoBytes))
		}), 0, "not /api/info JSON"},
		{"hangs", fakeBackend(t, func(_ http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}), 50 * time.Millisecond, "did not answer in time"},
		{"bad url", "http://[::1", 0, "bad BACKEND_URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := frontendCfg(tc.backendURL)
			if tc.timeout > 0 {
				cfg.BackendTimeout = tc.timeout
			}
			status, body, _ := getPage(t, cfg)
			if status != 200 {
				t.Fatalf("status = %d, want 200 (page renders without the backend)", status)
			}
			if !strings.Contains(body, `id="backend-error"`) || !strings.Contains(body, "The backend is unreachable") {
				t.Errorf("page does not say the backend is unreachable:\n%s", body)
			}
			if !strings.Contains(body, tc.wantReason) {
				t.Errorf("page does not give the reason %q:\n%s", tc.wantReason, body)
			}
			if !strings.Contains(body, `<td id="frontend-version">0.2.0</td>`) {
				t.Errorf("page lost the frontend's own version:\n%s", body)
			}
		})
	}
}

func TestPageEscapesBackendData(t *testing.T) {
	evil := `<script>alert("x")</script>`
	status, body, _ := getPage(t, frontendCfg(fakeBackend(t, infoJSON(evil, "<b>prod</b>"))))
	if status != 200 {
		t.Fatalf("status = %d, want 200", status)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>") {
		t.Errorf("backend markup reached the page unescaped:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("escaped version missing from page:\n%s", body)
	}
}

func TestRoutes(t *testing.T) {
	var calls atomic.Int32
	backend := fakeBackend(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		infoJSON("1", "test")(w, r)
	})
	h := newHandler(frontendCfg(backend), &http.Client{}, noLog)
	tests := []struct {
		method, target string
		status         int
	}{
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"POST", "/", 405},
		{"PUT", "/healthz", 405},
		{"GET", "/favicon.ico", 404},
		{"GET", "/index.html", 404},
		{"GET", "//", 404},
		{"GET", "/../etc/passwd", 404},
		{"GET", "/%2e%2e/", 404},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, tc.status, rec.Body)
			}
		})
	}
	// Probes and rejected requests must not depend on (or load) the backend.
	if n := calls.Load(); n != 0 {
		t.Errorf("backend called %d times by probes and rejected requests, want 0", n)
	}
}

func TestConfigFromEnv(t *testing.T) {
	cfg := configFromEnv(envOf(nil))
	if cfg.BackendURL != "http://backend:8080" || cfg.Version != "unknown" || cfg.BackendTimeout <= 0 {
		t.Errorf("defaults = %+v, want backend http://backend:8080, version unknown, a timeout", cfg)
	}
	cfg = configFromEnv(envOf(map[string]string{"BACKEND_URL": "http://api.shop-dev:9000/", "APP_VERSION": "0.2.0"}))
	if cfg.BackendURL != "http://api.shop-dev:9000" || cfg.Version != "0.2.0" {
		t.Errorf("from env = %+v, want trailing slash trimmed and version 0.2.0", cfg)
	}
}

// TestRunServesAndStops runs the whole program against a fake backend and
// stops it the way SIGTERM does.
func TestRunServesAndStops(t *testing.T) {
	backend := fakeBackend(t, infoJSON("0.1.0", "prod"))
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs servetest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, envOf(map[string]string{"PORT": port, "APP_VERSION": "0.1.0", "BACKEND_URL": backend}), &logs)
	}()

	resp := waitForServer(t, "http://127.0.0.1:"+port+"/")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<td id="backend-version">0.1.0</td>`) {
		t.Fatalf("GET / = %d:\n%s\nwant 200 with the backend's version", resp.StatusCode, body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after shutdown = %v, want nil", err)
	}
	var sawRequest bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		sawRequest = sawRequest || (rec["msg"] == "request" && rec["path"] == "/")
	}
	if !sawRequest {
		t.Errorf("no request log line for GET /:\n%s", logs.String())
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
