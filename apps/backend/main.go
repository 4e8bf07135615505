// Command backend is the shop's API service. It reports its own version and
// environment on GET /api/info, which the frontend shows.
//
// Environment: PORT (default 8080), APP_VERSION, APP_ENV.
package main

import (
	"context"
	"io"
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
	log := serve.NewLogger(logOut).With("service", "backend")
	cfg := configFromEnv(getenv)
	log.Info("starting", "version", cfg.Version, "environment", cfg.Environment)
	err := serve.ListenAndRun(ctx, serve.Addr(getenv), serve.LogRequests(log, newHandler(cfg)), log)
	if err != nil {
		log.Error("backend stopped", "error", err.Error())
	}
	return err
}
