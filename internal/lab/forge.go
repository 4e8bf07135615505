package lab

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tug-gitops/tug/internal/config"
	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/supervisor"
)

// The forge hosts the lab's copy of the GitOps repository at the same
// owner/name path as the real one, so Argo CD, promotions and tests work
// against a real git server with pull requests.
const (
	ForgeOwner = "tug-gitops"
	ForgeRepo  = "tug"
)

// startForge starts Gitea and, the first time, pushes a snapshot of the
// repository's HEAD with its repository URL retargeted at the forge.
func (l *Lab) startForge(ctx context.Context, bin string, port int) error {
	srv, err := giteaserver.Start(ctx, giteaserver.Options{
		Binary: bin, StateDir: l.layout.Gitea(), Port: port, Logger: l.opts.Log,
		Run: func(c giteaserver.Command) (giteaserver.Process, error) {
			return l.superviseForge(c, port)
		},
	})
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.forge = srv
	l.mu.Unlock()
	repo, err := srv.CreateRepo(ctx, ForgeOwner, ForgeRepo)
	if err != nil {
		return err
	}
	// Gitea updates a repository's "empty" flag in a queue after a push, so
	// ask for the branch itself.
	if hasMain, err := l.forgeHasBranch(ctx, "main"); err != nil {
		return err
	} else if hasMain || !repo.Empty {
		l.opts.Log.Info("forge repository exists; keeping its history", "repo", l.forgeRepoURL())
		return nil
	}
	return l.pushSnapshot(ctx)
}

// superviseForge runs `gitea web` under the lab's supervisor, like every
// other component: restarted when it dies, stopped with the lab, shown by
// 'tug lab status'; it trusts the lab's CA. Gitea's own set-up (admin
// user, token) runs before, once, in giteaserver.Start.
func (l *Lab) superviseForge(c giteaserver.Command, port int) (giteaserver.Process, error) {
	// Webhooks go to argocd-server over HTTPS with the lab CA's certificate.
	c.Env = append(append(c.Env, "SSL_CERT_FILE="+l.pki.caPath()), settleEnv()...)
	l.mu.Lock()
	l.comps["gitea"] = component{Name: "gitea", Binary: c.Path, Args: c.Args, Env: c.Env, Dir: c.Dir, Ports: map[string]int{"http": port}}
	l.mu.Unlock()
	return l.sup.Start(supervisor.Spec{Name: "gitea", Path: c.Path, Args: c.Args, Env: c.Env, Dir: c.Dir, Log: c.Log})
}

func (l *Lab) forgeHasBranch(ctx context.Context, branch string) (bool, error) {
	c, err := l.forge.Client(ctx)
	if err != nil {
		return false, err
	}
	_, resp, err := c.GetRepoBranch(ForgeOwner, ForgeRepo, branch)
	if err == nil {
		return true, nil
	}
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	return false, fmt.Errorf("forge: read branch %s: %w", branch, err)
}

// forgeRepoURL is the clone URL of the lab's copy of the repository.
func (l *Lab) forgeRepoURL() string {
	port := l.ports.lookup("gitea")
	if port == 0 {
		return ""
	}
	return giteaserver.RepoURLAt(giteaserver.URLForPort(port), ForgeOwner, ForgeRepo)
}

// pushSnapshot exports the committed HEAD of the repository (what a clone
// would see: uncommitted changes stay out), points every Argo CD object
// and tug.yaml at the forge, and pushes it as the forge's main branch.
func (l *Lab) pushSnapshot(ctx context.Context) error {
	cfg, err := config.Load(l.opts.RepoRoot)
	if err != nil {
		return err
	}
	if cfg.RepoURL == "" {
		return fmt.Errorf("%s has no repoURL: the lab needs it to retarget its copy", filepath.Join(l.opts.RepoRoot, "tug.yaml"))
	}
	began := time.Now()
	scratch, err := os.MkdirTemp("", "tug-lab-snapshot-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	snap, err := makeSnapshot(ctx, l.opts.RepoRoot, scratch, cfg.RepoURL, l.forgeRepoURL())
	if err != nil {
		return err
	}
	l.opts.Log.Debug("snapshot made", "commit", snap.commit, "retargeted", snap.retargeted, "took", time.Since(began))
	// A Gitea that has just created the repository can answer the first
	// push with a 500 on a busy machine: retry a few times, never forcing.
	err = poll(ctx, 30*time.Second, func() error {
		err := l.forge.PushCommit(ctx, snap.gitDir, snap.commit, ForgeOwner, ForgeRepo, "main")
		if err != nil && !strings.Contains(err.Error(), "HTTP 5") {
			return permanentError{err}
		}
		return err
	})
	if err != nil {
		return err
	}
	head := snap.head[:12]
	l.opts.Log.Info("pushed repository snapshot to the forge", "repo", l.forgeRepoURL(), "from", head, "took", time.Since(began).Round(time.Millisecond))
	return nil
}
