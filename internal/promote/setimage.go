package promote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/repo"
)

// SetImageOptions ask for the pull request that makes APP-ENV run an image
// tag pinned to a digest: what tug release opens for the first environment
// after pushing the image. It is the promotion pull request without a
// source environment: one branch (release/APP-ENV-TAG), one PR, reused when
// run again, never force-pushed.
type SetImageOptions struct {
	App, Env string
	Tag      string
	// Digest is sha256:<hex>; empty deploys by tag.
	Digest string
	// TagKey and DigestKey are the dotted paths in the value file
	// (default image.tag and image.digest).
	TagKey, DigestKey string
	// Forge hosts the repository. Nil is allowed only with DryRun: the
	// repository is then read from RepoDir as it is on disk.
	Forge   forge.Forge
	RepoDir string
	Merge   bool
	DryRun  bool
	// About opens the pull request text (Markdown): where the image comes from.
	About string
	// Author of the commit (default "tug release <tug-release@noreply.localhost>").
	Author object.Signature
	Logger *slog.Logger
}

// SetImage opens (or reuses, or with DryRun shows) the pull request setting
// the tag and digest in APP-ENV's value file. Result.From is empty.
func SetImage(ctx context.Context, o SetImageOptions) (*Result, error) {
	start := time.Now()
	switch {
	case o.App == "" || o.Env == "" || o.Tag == "":
		return nil, errors.New("setting an image needs APP, the environment and the tag")
	case o.Forge == nil && !o.DryRun:
		return nil, errors.New("opening the pull request needs a forge (--forge-url, and a token in $TUG_FORGE_TOKEN or a file named by $TUG_FORGE_TOKEN_FILE); only --dry-run works without one")
	}
	if o.TagKey == "" {
		o.TagKey = "image.tag"
	}
	if o.DigestKey == "" {
		o.DigestKey = "image.digest"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Author.Name == "" {
		o.Author = object.Signature{Name: "tug release", Email: "tug-release@noreply.localhost"}
	}
	if o.RepoDir == "" {
		o.RepoDir = "."
	}
	res := &Result{App: o.App, To: o.Env, NewTag: o.Tag, NewDigest: o.Digest}
	p := &proposal{forge: o.Forge, author: o.Author, logger: o.Logger, dryRun: o.DryRun,
		plan: func(ctx context.Context, root string, _ *clone) (*change, error) {
			return planSetImage(ctx, &o, res, root)
		}}
	if o.Forge == nil {
		return res, p.local(ctx, o.RepoDir)
	}
	if err := p.run(ctx, res); err != nil {
		return nil, err
	}
	if res.NoOp || o.DryRun {
		return res, nil
	}
	res.TimeToPR = time.Since(start)
	res.TimeToPRSeconds = res.TimeToPR.Round(time.Millisecond).Seconds()
	if o.Merge {
		if err := p.merge(ctx, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

func planSetImage(ctx context.Context, o *SetImageOptions, res *Result, root string) (*change, error) {
	r, err := repo.Load(root)
	if err != nil {
		return nil, err
	}
	env, err := findEnvApp(r, o.App, o.Env, o.TagKey, o.DigestKey)
	if err != nil {
		return nil, err
	}
	res.ToApp, res.ValueFile, res.toNamespace = env.Name(), env.ValueFile, env.App.Namespace
	res.OldTag, res.OldDigest = env.Tag.Value, env.digest()
	if env.Tag.Value == o.Tag && env.digest() == o.Digest {
		res.NoOp = true
		return nil, nil
	}
	edits, err := imageEdits(env, o.TagKey, o.Tag, o.DigestKey, o.Digest)
	if err != nil {
		return nil, err
	}
	edited, err := applyEdits(ctx, res, r, root, env, edits)
	if err != nil {
		return nil, err
	}
	res.mergeMsg = fmt.Sprintf("Merge release of %s %s to %s", o.App, o.Tag, o.Env)
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- tug-release app=%s env=%s tag=%s digest=%s -->\n", o.App, o.Env, o.Tag, o.Digest)
	fmt.Fprintf(&b, "Release **%s** `%s` to **%s** (`%s` → `%s`).\n\n", o.App, o.Tag, o.Env, env.Tag.Value, o.Tag)
	if o.About != "" {
		b.WriteString(strings.TrimSpace(o.About) + "\n\n")
	}
	fmt.Fprintf(&b, "- Changes `%s` in `%s` (Application `%s`, chart `%s`).\n", o.TagKey, env.ValueFile, env.Name(), env.ChartPath)
	if env.Digest != nil {
		fmt.Fprintf(&b, "- Image digest (`%s`): `%s` → `%s`.\n", o.DigestKey, orNone(env.digest()), orNone(o.Digest))
	}
	writeManifests(&b, res, o.Env, "tug release --dry-run")
	b.WriteString("\nOpened by `tug release`.\n")
	return &change{
		file: env.ValueFile, edits: edits, edited: edited,
		branch:  branchName("release", o.App, o.Env, o.Tag),
		title:   fmt.Sprintf("Release %s %s to %s", o.App, o.Tag, o.Env),
		message: fmt.Sprintf("release %s %s to %s\n\nSets %s in %s (%s) from %s to %s; %s: %s.\n", o.App, o.Tag, o.Env, o.TagKey, env.ValueFile, env.Name(), env.Tag.Value, o.Tag, o.DigestKey, orNone(o.Digest)),
		body:    b.String(),
	}, nil
}
