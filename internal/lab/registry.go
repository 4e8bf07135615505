package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/image"
	"github.com/tug-gitops/tug/internal/tools"
)

// The forge is also the lab's container registry: the charts name their
// images at their real home (ghcr.io/tug-gitops/<app>:<tag>), the lab
// pushes the images it builds to the forge under the same path, and the
// real node's containerd pulls ghcr.io through the forge as its mirror.
const mirroredRegistry = "ghcr.io"

// registryHost is the forge's registry (127.0.0.1:<gitea port>).
func (l *Lab) registryHost() string {
	return giteaserver.RegistryForPort(l.ports.lookup("gitea"))
}

// imageCache keeps the built images' tarballs by source digest, across labs.
func imageCache() string { return userCache("images") }

// userCache is a folder of tug's user cache, beside the built tools.
func userCache(name string) string { return filepath.Join(filepath.Dir(tools.DefaultCacheDir()), name) }

// publishImages builds (or takes from the cache) the image of every tag
// the charts' values files name and pushes those the forge's registry
// lacks, with the forge administrator's token.
func (l *Lab) publishImages(ctx context.Context) error {
	began := time.Now()
	auth := &authn.Basic{Username: l.forge.AdminUser(), Password: l.forge.Token()}
	pushed, err := image.Publish(ctx, l.opts.RepoRoot, imageCache(), l.forge.Registry(), auth)
	if err != nil {
		return fmt.Errorf("push the charts' images to the forge's registry: %w", err)
	}
	n := 0
	for _, p := range pushed {
		if !p.Skip {
			n++
		}
	}
	l.opts.Log.Info("images in the forge's registry", "registry", l.forge.Registry(), "images", len(pushed), "pushed", n, "took", time.Since(began).Round(10*time.Millisecond))
	return nil
}
