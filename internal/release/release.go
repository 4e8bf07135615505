// Package release builds a service's image from a commit, pushes it to a
// registry and opens the pull request that makes the first environment run
// it, pinned by digest: tug release.
//
// The image is built by internal/image from the committed tree (never from
// uncommitted edits), with the tag stamped into the binary; the same commit
// and tag always give the same digest. A tag the registry already holds
// with another digest is refused: tags are never moved. The pull request
// sets image.tag and image.digest through promote's code (promote.SetImage):
// one branch, one PR reused on re-runs, never a force-push.
package release

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tug-gitops/tug/internal/config"
	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/image"
	"github.com/tug-gitops/tug/internal/promote"
	"github.com/tug-gitops/tug/internal/yamledit"
)

// Environment variables naming the registry and its credentials.
const (
	// RegistryEnv overrides the push registry (as Options.Registry).
	RegistryEnv = "TUG_REGISTRY"
	// UserEnv and TokenEnv are a user name and a token for the push
	// registry; without them credentials come from docker's config.json
	// and its credential helpers.
	UserEnv  = "TUG_REGISTRY_USER"
	TokenEnv = "TUG_REGISTRY_TOKEN"
)

// Options for Run.
type Options struct {
	// App is the service: apps/<App> is built, charts/<App>/values.yaml's
	// image.repository names the image.
	App string
	// RepoDir is the repository (any folder inside its git work tree).
	RepoDir string
	// Commit to build (default HEAD).
	Commit string
	// Tag of the image; empty means DefaultTag of the commit.
	Tag string
	// Registry, when set (HOST[:PORT]), is where the image is pushed
	// instead of its repository's own registry, keeping the repository
	// path: ghcr.io/tug-gitops/backend goes to HOST/tug-gitops/backend.
	// Plain http is used only for loopback hosts.
	Registry string
	// Env is the environment the pull request targets (default: the first
	// of tug.yaml's environments).
	Env string
	// Keychain resolves registry credentials (default: Keychain(Registry)).
	Keychain authn.Keychain
	// Transport for registry requests (default http.DefaultTransport).
	Transport http.RoundTripper
	// Forge hosts the GitOps repository; nil only with DryRun.
	Forge  forge.Forge
	Merge  bool
	DryRun bool
	Author object.Signature
	Logger *slog.Logger
}

// Result says what Run did.
type Result struct {
	App    string `json:"app"`
	Commit string `json:"commit"`
	Tag    string `json:"tag"`
	// TagSource says where the tag came from ("--tag", "git tag v1.2.3",
	// "commit (no tag on it)").
	TagSource string `json:"tagSource"`
	// Image is the reference the charts use (repository:tag); PushedTo
	// where it was pushed (the same unless Options.Registry is set).
	Image    string `json:"image"`
	PushedTo string `json:"pushedTo"`
	Digest   string `json:"digest"`
	// Pushed is false on a dry run and when the registry already had the
	// tag at this digest (a re-run).
	Pushed       bool    `json:"pushed"`
	AlreadyThere bool    `json:"alreadyThere,omitempty"`
	BuildSeconds float64 `json:"buildSeconds"`
	PushSeconds  float64 `json:"pushSeconds,omitempty"`
	DryRun       bool    `json:"dryRun,omitempty"`
	// Change is the pull request's outcome (see tug promote).
	Change *promote.Result `json:"change"`
}

// ErrTagTaken is returned (wrapped) when the registry holds the tag with
// another digest.
var ErrTagTaken = errors.New("the tag already exists with another digest")

// Run builds, pushes and opens the pull request (or, with DryRun, builds
// and shows the change only).
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.App == "" || strings.ContainsAny(o.App, `/\. `) {
		return nil, fmt.Errorf("release: APP %q is not a service name (a folder under apps/)", o.App)
	}
	if o.Forge == nil && !o.DryRun {
		return nil, errors.New("release needs a forge to open the pull request (--forge-url, and a token in $TUG_FORGE_TOKEN or a file named by $TUG_FORGE_TOKEN_FILE); only --dry-run works without one")
	}
	src, err := openSource(o.RepoDir, o.Commit)
	if err != nil {
		return nil, err
	}
	root := src.root
	if o.Env == "" {
		cfg, err := config.Load(root)
		if err != nil {
			return nil, err
		}
		o.Env = cfg.Environments[0]
	}
	res := &Result{App: o.App, Commit: src.commit.String(), Tag: o.Tag, TagSource: "--tag", DryRun: o.DryRun}
	if res.Tag == "" {
		res.Tag, res.TagSource = src.defaultTag()
	}
	if err := CheckTag(res.Tag); err != nil {
		return nil, err
	}
	repository, err := chartRepository(root, o.App)
	if err != nil {
		return nil, err
	}
	ref, pushRef, err := References(repository, res.Tag, o.Registry)
	if err != nil {
		return nil, err
	}
	res.Image, res.PushedTo = ref.Name(), pushRef.Name()

	start := time.Now()
	img, err := src.build(ctx, o.App, res.Tag)
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	res.Digest = d.String()
	res.BuildSeconds = time.Since(start).Round(time.Millisecond).Seconds()
	o.Logger.Info("image built", "image", res.Image, "digest", res.Digest, "commit", res.Commit[:10], "seconds", res.BuildSeconds)

	if !o.DryRun {
		start = time.Now()
		pushed, err := Push(ctx, img, pushRef, o.Keychain, o.Transport)
		if err != nil {
			return nil, err
		}
		res.Pushed, res.AlreadyThere = pushed, !pushed
		res.PushSeconds = time.Since(start).Round(time.Millisecond).Seconds()
		o.Logger.Info("image pushed", "to", res.PushedTo, "digest", res.Digest, "alreadyThere", res.AlreadyThere, "seconds", res.PushSeconds)
	}

	about := fmt.Sprintf("Image `%s` (digest `%s`), built by `tug release` from commit `%s`", res.Image, res.Digest, res.Commit)
	if res.PushedTo != res.Image {
		about += fmt.Sprintf(" and pushed to `%s`", res.PushedTo)
	}
	about += "."
	res.Change, err = promote.SetImage(ctx, promote.SetImageOptions{
		App: o.App, Env: o.Env, Tag: res.Tag, Digest: res.Digest,
		Forge: o.Forge, RepoDir: root, Merge: o.Merge, DryRun: o.DryRun,
		About: about, Author: o.Author, Logger: o.Logger,
	})
	if err != nil {
		return res, err
	}
	return res, nil
}

// tagRE is the OCI distribution spec's tag grammar.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// CheckTag refuses what is not a valid image tag.
func CheckTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return fmt.Errorf("release: %q is not a valid image tag: letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'", tag)
	}
	return nil
}

// chartRepository reads image.repository from charts/<app>/values.yaml.
func chartRepository(root, app string) (string, error) {
	rel := filepath.Join("charts", app, "values.yaml")
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return "", fmt.Errorf("release: the image's name comes from %s: %w", rel, err)
	}
	s, err := yamledit.Get(data, "image.repository")
	if err != nil {
		return "", fmt.Errorf("release: %s: %w", rel, err)
	}
	if s.Value == "" {
		return "", fmt.Errorf("release: %s:%d: image.repository is empty", rel, s.Line)
	}
	return s.Value, nil
}

// References returns repository:tag and where to push it: the same, or
// with registry (HOST[:PORT]) in place of the repository's registry.
func References(repository, tag, registry string) (ref, push name.Tag, err error) {
	ref, err = name.NewTag(repository+":"+tag, name.StrictValidation)
	if err != nil {
		return ref, push, fmt.Errorf("release: image %s:%s: %w", repository, tag, err)
	}
	if registry == "" {
		return ref, ref, nil
	}
	if strings.Contains(registry, "/") {
		return ref, push, fmt.Errorf("release: --registry %q must be HOST[:PORT] only (the repository path %s is kept)", registry, ref.RepositoryStr())
	}
	target, err := image.Retarget(ref.Name(), registry)
	if err == nil {
		push, err = name.NewTag(target, name.StrictValidation)
	}
	if err != nil {
		return ref, push, fmt.Errorf("release: --registry %q: %w", registry, err)
	}
	return ref, push, nil
}

// Push writes img under ref unless the registry already has the tag: at
// the same digest it does nothing (pushed false), at another digest it
// refuses with ErrTagTaken and writes nothing.
func Push(ctx context.Context, img v1.Image, ref name.Tag, kc authn.Keychain, rt http.RoundTripper) (pushed bool, err error) {
	if kc == nil {
		kc = Keychain(ref.RegistryStr())
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithTransport(loopbackOnlyHTTP{rt})}
	want, err := img.Digest()
	if err != nil {
		return false, err
	}
	desc, err := remote.Head(ref, opts...)
	switch {
	case err == nil && desc.Digest == want:
		return false, nil
	case err == nil:
		return false, fmt.Errorf("release: %s is already %s, and this build is %s: %w; tags are never moved, release another tag (--tag)", ref.Name(), desc.Digest, want, ErrTagTaken)
	case !isNotFound(err):
		return false, fmt.Errorf("release: look up %s: %w", ref.Name(), err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		return false, fmt.Errorf("release: push %s: %w", ref.Name(), err)
	}
	return true, nil
}
