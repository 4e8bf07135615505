package image

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Pushed is one image reference Publish handled.
type Pushed struct {
	Source string  // as the values files name it: ghcr.io/tug-gitops/backend:0.2.0
	Target string  // where it went: 127.0.0.1:3000/tug-gitops/backend:0.2.0
	Digest v1.Hash // the manifest's digest
	Skip   bool    // the registry had that digest under Target already
}

// Retarget is ref with its registry host replaced by registry
// ("ghcr.io/tug-gitops/backend:0.2.0" → "127.0.0.1:3000/tug-gitops/backend:0.2.0").
func Retarget(ref, registry string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image: bad reference %q: %w", ref, err)
	}
	return registry + "/" + strings.TrimPrefix(r.Name(), r.Context().RegistryStr()+"/"), nil
}

// Publish builds (or takes from cacheDir, see Archive) the image of every
// tag the charts' values files name (ChartImages) and pushes it to
// registry under the same repository path, as a registry mirror serves it.
// A reference whose registry already has the same digest is not pushed
// again. Loopback registries are spoken to over plain HTTP.
func Publish(ctx context.Context, repoRoot, cacheDir, registry string, auth authn.Authenticator) ([]Pushed, error) {
	charts, err := ChartImages(repoRoot)
	if err != nil {
		return nil, err
	}
	type job struct {
		app, version string
		refs         []string
	}
	var jobs []job
	for app, refs := range charts {
		byTag := map[string][]string{}
		for _, r := range refs {
			byTag[Tag(r)] = append(byTag[Tag(r)], r)
		}
		for tag, rs := range byTag {
			jobs = append(jobs, job{app, tag, rs})
		}
	}
	var (
		mu   sync.Mutex
		out  []Pushed
		wg   sync.WaitGroup
		errs = make([]error, len(jobs))
	)
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path, err := Archive(ctx, Spec{RepoRoot: repoRoot, App: j.app, Version: j.version}, j.refs, cacheDir)
			if err != nil {
				errs[i] = err
				return
			}
			for _, src := range j.refs {
				p, err := pushArchive(ctx, path, src, registry, auth)
				if err != nil {
					errs[i] = err
					return
				}
				mu.Lock()
				out = append(out, p)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func pushArchive(ctx context.Context, path, src, registry string, auth authn.Authenticator) (Pushed, error) {
	p := Pushed{Source: src}
	tag, err := name.NewTag(src)
	if err != nil {
		return p, fmt.Errorf("image: bad reference %q: %w", src, err)
	}
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		return p, fmt.Errorf("image: read %s: %w", path, err)
	}
	if p.Digest, err = img.Digest(); err != nil {
		return p, err
	}
	if p.Target, err = Retarget(src, registry); err != nil {
		return p, err
	}
	dst, err := name.NewTag(p.Target)
	if err != nil {
		return p, err
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth)}
	if d, err := remote.Head(dst, opts...); err == nil && d.Digest == p.Digest {
		p.Skip = true
		return p, nil
	}
	if err := remote.Write(dst, img, opts...); err != nil {
		return p, fmt.Errorf("image: push %s: %w", p.Target, err)
	}
	return p, nil
}
