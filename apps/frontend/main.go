// Command frontend is the shop's web page. It shows its own version and the
// backend's, fetched from the backend's /api/info through its Service name.
//
// Environment: PORT (default 8080), APP_VERSION, APP_ENV,
// BACKEND_URL (default http://backend:8080).
package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/tug-gitops/tug/apps/internal/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		os.Exit(1)
	}
}

// run serves until ctx ends (SIGTERM/SIGINT in main), then shuts down gracefully.
func run(ctx context.Context, getenv func(string) string, logOut io.Writer) error {
	log := serve.NewLogger(logOut).With("service", "frontend")
	cfg := configFromEnv(getenv)
	log.Info("starting", "version", cfg.Version, "environment", cfg.Environment, "backend", cfg.BackendURL)
	// The per-request context carries the deadline; Timeout is a backstop.
	client := &http.Client{Timeout: 2 * cfg.BackendTimeout}
	h := serve.LogRequests(log, newHandler(cfg, client, log.Warn))
	err := serve.ListenAndRun(ctx, serve.Addr(getenv), h, log)
	if err != nil {
		log.Error("frontend stopped", "error", err.Error())
	}
	return err
}
