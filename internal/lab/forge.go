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

// startForge starts Gitea with the lab's copy of the repository. The
// first time, while Gitea starts, it writes a snapshot of the repository's
// HEAD, its repository URL retargeted at the forge, straight into Gitea's
// repository folder (seedForge), then has Gitea adopt it: a push would run
// three Gitea hooks, each a new gitea process, about 1.5 s on two busy
// cores.
func (l *Lab) startForge(ctx context.Context, bin string, port int) error {
	seeded := make(chan error, 1)
	go func() { seeded <- l.seedForge(ctx) }()
	srv, err := giteaserver.Start(ctx, giteaserver.Options{
		Binary: bin, StateDir: l.layout.Gitea(), Port: port, Logger: l.opts.Log,
		Run: func(c giteaserver.Command) (giteaserver.Process, error) {
			return l.superviseForge(c, port)
		},
	})
	if seedErr := <-seeded; err == nil {
		err = seedErr
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.forge = srv
	l.mu.Unlock()
	return l.openForgeRepo(ctx)
}

// openForgeRepo makes sure Gitea serves the repository: adopted from the
// seed on a first start, kept as it is afterwards.
func (l *Lab) openForgeRepo(ctx context.Context) error {
	c, err := l.forge.Client(ctx)
	if err != nil {
		return err
	}
	repo, resp, err := c.GetRepo(ForgeOwner, ForgeRepo)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		began := time.Now()
		if _, err := l.forge.AdoptRepo(ctx, ForgeOwner, ForgeRepo); err != nil {
			return err
		}
		l.opts.Log.Info("forge adopted the repository snapshot", "repo", l.forgeRepoURL(), "took", time.Since(began).Round(time.Millisecond))
		return nil
	}
	if err != nil {
		return fmt.Errorf("forge: read repository %s/%s: %w", ForgeOwner, ForgeRepo, err)
	}
	// Gitea updates a repository's "empty" flag in a queue after a push, so
	// ask for the branch itself.
	if hasMain, err := l.forgeHasBranch(ctx, "main"); err != nil {
		return err
	} else if hasMain || !repo.Empty {
		l.opts.Log.Info("forge repository exists; keeping its history", "repo", l.forgeRepoURL())
		return nil
	}
	// Created but never pushed to, by an earlier tug that pushed its
	// snapshot over HTTP.
	return l.pushSnapshot(ctx)
}

// seedForge writes the snapshot into Gitea's repository folder unless
// Gitea has the repository already (since an earlier start). A seed an
// earlier start wrote but stopped before Gitea adopted it is written again
// from the HEAD of now.
func (l *Lab) seedForge(ctx context.Context) error {
	if giteaserver.HasRepo(l.layout.Gitea(), ForgeOwner, ForgeRepo) {
		return nil
	}
	return l.withSnapshot(ctx, func(snap *snapshot) error {
		return giteaserver.SeedRepo(ctx, l.layout.Gitea(), snap.gitDir, snap.commit, ForgeOwner, ForgeRepo, "main")
	})
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

// withSnapshot exports the committed HEAD of the repository (what a clone
// would see: uncommitted changes stay out), points every Argo CD object and
// tug.yaml at the forge, and hands the commit to use.
func (l *Lab) withSnapshot(ctx context.Context, use func(*snapshot) error) error {
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
	if err := use(snap); err != nil {
		return err
	}
	l.opts.Log.Info("repository snapshot written for the forge", "repo", l.forgeRepoURL(), "from", snap.head[:12], "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// pushSnapshot pushes the snapshot as the forge's main branch.
func (l *Lab) pushSnapshot(ctx context.Context) error {
	return l.withSnapshot(ctx, func(snap *snapshot) error {
		// A Gitea that has just created the repository can answer the
		// first push with a 500 on a busy machine: retry a few times,
		// never forcing.
		return poll(ctx, 30*time.Second, func() error {
			err := l.forge.PushCommit(ctx, snap.gitDir, snap.commit, ForgeOwner, ForgeRepo, "main")
			if err != nil && !strings.Contains(err.Error(), "HTTP 5") {
				return permanentError{err}
			}
			return err
		})
	})
}
