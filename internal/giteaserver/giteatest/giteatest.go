// Package giteatest starts the real Gitea that a test binary's tests share.
package giteatest

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/tools"
)

// Start builds Gitea if needed (tests never skip for want of it: no Gitea,
// no pass), starts it in a temporary state folder and creates a "reviewer"
// user. stop stops Gitea and removes the folder.
func Start(ctx context.Context) (srv *giteaserver.Server, reviewerToken string, stop func(), err error) {
	bin, err := tools.Ensure(ctx, tools.Gitea)
	if err != nil {
		return nil, "", nil, fmt.Errorf("these tests need the Gitea binary: %w", err)
	}
	state, err := os.MkdirTemp("", "tug-test-gitea-*")
	if err != nil {
		return nil, "", nil, err
	}
	srv, err = giteaserver.Start(ctx, giteaserver.Options{Binary: bin, StateDir: state, Logger: slog.Default()})
	if err != nil {
		os.RemoveAll(state)
		return nil, "", nil, err
	}
	stop = func() {
		_ = srv.Stop(context.Background())
		os.RemoveAll(state)
	}
	if reviewerToken, err = srv.CreateUser(ctx, "reviewer"); err != nil {
		stop()
		return nil, "", nil, err
	}
	return srv, reviewerToken, stop, nil
}
