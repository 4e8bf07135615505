// Package serve holds what the shop's two services share: JSON logging,
// request logging, a tiny GET-only router with JSON error bodies, and a
// server loop that drains and shuts down gracefully when its context ends.
//
// It uses the standard library only, so each service's container image is a
// single static binary with no module downloads beyond the Go toolchain.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// DefaultPort is the port both services listen on and both charts expose.
const DefaultPort = "8080"

// ShutdownTimeout bounds how long in-flight requests may run after the
// drain. With DrainDelay it stays well under Kubernetes' default
// terminationGracePeriodSeconds (30s), so the process exits on its own
// before the kubelet sends SIGKILL.
const ShutdownTimeout = 10 * time.Second

// DrainDelay is how long a server keeps accepting connections after SIGTERM,
// answering each request with "Connection: close". Kubernetes sends SIGTERM
// as it marks the pod terminating, and kube-proxy takes the pod out of its
// Service's rules a moment later: until then new connections may still be
// routed here, and a closed listener would refuse them (a failed request in
// the middle of a rollout). Clients holding a kept-alive connection are made
// to reconnect at once, which takes them to the Service's other pods. One
// second was not always enough: under CI's load, one request in 2,314 was
// refused by a pod whose listener had closed before kube-proxy removed it.
const DrainDelay = 2 * time.Second

// Shutdown says how Run stops once its context ends: it drains for Drain,
// then waits up to Timeout for in-flight requests to finish.
type Shutdown struct {
	Drain, Timeout time.Duration
}

// NewLogger returns a structured JSON logger writing to w.
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

// Addr returns the listen address from the PORT environment variable
// (read through getenv so tests need not touch the process environment).
func Addr(getenv func(string) string) string {
	port := getenv("PORT")
	if port == "" {
		port = DefaultPort
	}
	return ":" + port
}

// NewServer returns an http.Server with timeouts set, so one slow client
// cannot hold a connection (and a goroutine) forever.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Run serves on ln until ctx ends. It then drains: kept-alive connections
// are closed once idle and every response says "Connection: close", while
// the listener still accepts for stop.Drain. Then it stops accepting and
// waits up to stop.Timeout for in-flight requests to finish. It returns nil
// after a clean shutdown, and an error if serving failed or the deadline
// passed.
func Run(ctx context.Context, srv *http.Server, ln net.Listener, stop Shutdown, log *slog.Logger) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	if stop.Drain > 0 {
		log.Info("draining", "for", stop.Drain.String())
		srv.SetKeepAlivesEnabled(false)
		drained := time.NewTimer(stop.Drain)
		select {
		case err := <-serveErr:
			drained.Stop()
			return fmt.Errorf("serve %s: %w", ln.Addr(), err)
		case <-drained.C:
		}
	}

	log.Info("shutting down", "timeout", stop.Timeout.String())
	// The parent ctx is already done; the shutdown deadline needs a fresh one.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stop.Timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("graceful shutdown did not finish within %s: %w", stop.Timeout, err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	log.Info("stopped")
	return nil
}

// ListenAndRun listens on addr and calls Run with DrainDelay and
// ShutdownTimeout.
func ListenAndRun(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set PORT to a free port): %w", addr, err)
	}
	return Run(ctx, NewServer(h, log), ln, Shutdown{Drain: DrainDelay, Timeout: ShutdownTimeout}, log)
}

// Router maps exact paths to GET handlers. Unlike http.ServeMux it answers
// unknown paths and wrong methods with JSON bodies, and never redirects
// unclean paths (a 301 to a cleaned path surprises API clients and probes).
type Router map[string]http.HandlerFunc

func (rt Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := rt[r.URL.Path]
	if !ok {
		WriteError(w, http.StatusNotFound, fmt.Sprintf("no route for path %q", r.URL.Path))
		return
	}
	// HEAD is served as GET; net/http drops the body.
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; use GET", r.Method, r.URL.Path))
		return
	}
	h(w, r)
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing useful to do
}

// WriteError writes an ErrorBody with the given status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, ErrorBody{Error: msg, Status: status})
}

// Healthz answers liveness and readiness probes: the process is up and its
// handlers run. Neither service checks its dependencies here, so a backend
// outage does not make Kubernetes restart or unroute the frontend.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// LogRequests logs one structured line per request: method, path, status,
// bytes and duration.
func LogRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wroteHeader = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
