package lab

import (
	"context"
	"strconv"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/reposerver/apiclient"
)

// prewarmRepoServer asks the repo-server for the forge repository's
// directories at main, as the ApplicationSet git generator would. The
// repo-server clones and checks the repository out to answer, in the
// working copy it keeps per repository URL, so the root Application's
// first comparison finds the commit there instead of fetching all of it
// then, on the start-up's critical path. It changes nothing Argo CD
// decides; a failure only costs that second later and is logged.
func (l *Lab) prewarmRepoServer(ctx context.Context) {
	began := time.Now()
	addr := "127.0.0.1:" + strconv.Itoa(l.ports.lookup("argocd-repo-server/grpc"))
	// The repo-server's certificate is self-signed, as upstream's is unless
	// argocd-repo-server-tls is provided; Argo CD's own clients do not
	// verify it either (controller.repo.server.strict.tls is false).
	closer, client, err := apiclient.NewRepoServerClientset(addr, 60, apiclient.TLSConfiguration{}).NewRepoServerClient()
	if err != nil {
		l.opts.Log.Debug("repo-server warm-up skipped", "err", err)
		return
	}
	defer closer.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = client.GetGitDirectories(ctx, &apiclient.GitDirectoriesRequest{
		Repo:     &v1alpha1.Repository{Repo: l.forgeRepoURL(), Type: "git"},
		Revision: "main",
	})
	l.opts.Log.Debug("repo-server warmed up with the forge repository", "took", time.Since(began), "err", err)
}
