// Package promote moves an image tag (and the digest pinned with it) from
// one environment to the next by pull request: it reads the tag APP runs in --from (its value file, and
// when a cluster is given, the live Argo CD Application's health and synced
// revision), writes it into the --to value file without disturbing anything
// else, and opens a pull request on the forge with the rendered-manifest
// diff. All git work happens in a temporary clone of the forge's default
// branch; the user's working tree is never touched, and nothing is ever
// force-pushed. SetImage opens the same kind of pull request for a tag and
// digest given by the caller (tug release).
package promote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/diff"
	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/repo"
	"github.com/tug-gitops/tug/internal/yamledit"
)

// maxAttempts bounds rebuilding the change when the base branch keeps
// moving under us.
const maxAttempts = 5

// Options for Run.
type Options struct {
	App, From, To string
	// Tag to promote; empty means the tag --from runs.
	Tag string
	// Key is the dotted path of the tag in the value files (default image.tag).
	Key string
	// DigestKey is the dotted path of the image digest (default
	// image.digest). When --from's value file pins a digest it is copied
	// with the tag, and with a Cluster the gate checks that --from's pods
	// run it. Value files without the key are promoted by tag alone.
	DigestKey string
	// Forge hosts the repository. Nil is allowed only with DryRun: the
	// repository is then read from RepoDir as it is on disk.
	Forge   forge.Forge
	RepoDir string
	// Cluster, when set, enables the health gate on the --from Application.
	Cluster *Cluster
	Merge   bool
	// Wait, with Merge, waits after the merge until the --to Application
	// is Synced and Healthy at the merge commit; nil does not wait.
	Wait   *Wait
	DryRun bool
	// Force promotes despite a failed gate, recording a warning in the PR.
	Force bool
	// Author of the commit (default "tug promote <tug-promote@noreply.localhost>").
	Author object.Signature
	Logger *slog.Logger

	// beforePush runs after the change is built and before the base is
	// checked and the branch pushed; tests use it to move the base.
	beforePush func(ctx context.Context, attempt int) error
}

// Result says what Run did.
type Result struct {
	App     string `json:"app"`
	From    string `json:"from"`
	To      string `json:"to"`
	FromApp string `json:"fromApplication"`
	ToApp   string `json:"toApplication"`
	// ValueFile is the --to value file, repository-relative.
	ValueFile string `json:"valueFile"`
	OldTag    string `json:"oldTag"`
	NewTag    string `json:"newTag"`
	// OldDigest and NewDigest are the image digests pinned before and
	// after (empty: deployed by tag).
	OldDigest string `json:"oldDigest,omitempty"`
	NewDigest string `json:"newDigest,omitempty"`
	// NoOp is true when --to already runs NewTag: nothing was changed.
	NoOp bool `json:"noOp"`
	// Gate describes the health gate's outcome.
	Gate     string   `json:"gate,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Diff is the value-file change; ManifestDiff the rendered one.
	Diff         string `json:"diff,omitempty"`
	ManifestDiff string `json:"manifestDiff,omitempty"`
	RenderError  string `json:"renderError,omitempty"`
	// manifests is ManifestDiff per resource, for the PR body.
	manifests *diff.AppDiff

	Base        string             `json:"base,omitempty"`       // the forge's default branch
	BaseCommit  string             `json:"baseCommit,omitempty"` // the commit the change is built on
	Branch      string             `json:"branch,omitempty"`
	Commit      string             `json:"commit,omitempty"`
	Attempts    int                `json:"attempts,omitempty"` // 1 unless the base moved
	PR          *forge.PullRequest `json:"pullRequest,omitempty"`
	PRCreated   bool               `json:"pullRequestCreated,omitempty"` // false when an open PR was reused
	Merged      bool               `json:"merged,omitempty"`
	MergeCommit string             `json:"mergeCommit,omitempty"`
	// Deployed is the --to Application's state after waiting (Options.Wait).
	Deployed *appstatus.WaitResult `json:"deployed,omitempty"`
	// TimeToPR is from Run's start to the pull request being open.
	TimeToPR        time.Duration `json:"-"`
	TimeToPRSeconds float64       `json:"timeToPullRequestSeconds,omitempty"`

	toNamespace string // the --to Application's declared namespace
	mergeMsg    string
}

// Run performs (or with DryRun, shows) one promotion.
func Run(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	if err := o.validate(); err != nil {
		return nil, err
	}
	res := &Result{App: o.App, From: o.From, To: o.To}
	p := &proposal{forge: o.Forge, author: o.Author, logger: o.Logger, dryRun: o.DryRun, beforePush: o.beforePush,
		plan: func(ctx context.Context, root string, c *clone) (*change, error) {
			return planPromotion(ctx, &o, res, root, c)
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
		if o.Wait != nil {
			o.Logger.Info("merged; waiting for the Application to be Synced and Healthy at the merge commit", "application", res.ToApp, "commit", appstatus.ShortRevision(res.MergeCommit), "timeout", o.Wait.Timeout)
			var err error
			res.Deployed, err = o.Wait.run(ctx, res.ToApp, res.toNamespace, res.MergeCommit)
			if err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

func (o *Options) validate() error {
	switch {
	case o.App == "" || o.From == "" || o.To == "":
		return errors.New("promote needs APP, --from and --to")
	case o.From == o.To:
		return fmt.Errorf("--from and --to are both %q", o.From)
	case o.Wait != nil && !o.Merge:
		return errors.New("waiting for the deployment needs --merge: an unmerged pull request deploys nothing")
	case o.Forge == nil && !o.DryRun:
		return errors.New("promote needs a forge (--forge-url, and a token in $TUG_FORGE_TOKEN or a file named by $TUG_FORGE_TOKEN_FILE); only --dry-run works without one")
	}
	if o.Key == "" {
		o.Key = "image.tag"
	}
	if o.DigestKey == "" {
		o.DigestKey = "image.digest"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Author.Name == "" {
		o.Author = object.Signature{Name: "tug promote", Email: "tug-promote@noreply.localhost"}
	}
	if o.RepoDir == "" {
		o.RepoDir = "."
	}
	return nil
}

// planPromotion reads both environments from the repository at root,
// applies the gate, and builds the change to the --to value file: the tag,
// and the digest --from pins with it. Nil when --to already runs both.
func planPromotion(ctx context.Context, o *Options, res *Result, root string, c *clone) (*change, error) {
	r, err := repo.Load(root)
	if err != nil {
		return nil, err
	}
	from, err := findEnvApp(r, o.App, o.From, o.Key, o.DigestKey)
	if err != nil {
		return nil, err
	}
	to, err := findEnvApp(r, o.App, o.To, o.Key, o.DigestKey)
	if err != nil {
		return nil, err
	}
	tag, digest := o.Tag, ""
	if tag == "" {
		tag = from.Tag.Value
	}
	if tag == from.Tag.Value {
		digest = from.digest()
	}
	res.FromApp, res.ToApp, res.ValueFile = from.Name(), to.Name(), to.ValueFile
	res.toNamespace = to.App.Namespace
	res.OldTag, res.NewTag = to.Tag.Value, tag
	res.OldDigest, res.NewDigest = to.digest(), digest
	if to.Tag.Value == tag && to.digest() == digest {
		res.NoOp = true
		return nil, nil
	}
	if err := gate(ctx, o, res, from, tag, digest, c); err != nil {
		return nil, err
	}
	edits, err := imageEdits(to, o.Key, tag, o.DigestKey, digest)
	if err != nil {
		return nil, err
	}
	edited, err := applyEdits(ctx, res, r, root, to, edits)
	if err != nil {
		return nil, err
	}
	res.mergeMsg = fmt.Sprintf("Merge promotion of %s to %s: %s → %s", res.App, res.To, res.OldTag, res.NewTag)
	return &change{
		file: to.ValueFile, edits: edits, edited: edited,
		branch:  branchName("promote", o.App, o.To, tag),
		title:   title(o, to.Tag.Value, tag),
		message: commitMessage(o, from, to, tag, digest),
		body:    prBody(o, res, from, to, tag, digest),
	}, nil
}

// imageEdits are the value-file edits that make env run tag (pinned to
// digest when not empty). A file without the digest key gets the tag
// alone, unless a digest must be pinned.
func imageEdits(env envApp, tagKey, tag, digestKey, digest string) ([]Edit, error) {
	edits := []Edit{{Key: tagKey, Value: tag}}
	switch {
	case env.Digest != nil:
		edits = append(edits, Edit{Key: digestKey, Value: digest})
	case digest != "":
		return nil, fmt.Errorf("%s has no %s to pin %s to: add it next to the tag (%s), e.g. `digest: \"\"` under image, and commit that first", env.ValueFile, digestKey, digest, env.TagAt())
	}
	return edits, nil
}

// applyEdits computes the edited value file of env and fills res's value
// and rendered-manifest diffs.
func applyEdits(ctx context.Context, res *Result, r *repo.Repo, root string, env envApp, edits []Edit) ([]byte, error) {
	path := filepath.Join(root, filepath.FromSlash(env.ValueFile))
	orig, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	edited := orig
	for _, e := range edits {
		if edited, _, err = yamledit.Set(edited, e.Key, e.Value); err != nil {
			return nil, fmt.Errorf("%s: %w", env.ValueFile, err)
		}
	}
	res.Diff = diff.Unified(string(orig), string(edited), "a/"+env.ValueFile, "b/"+env.ValueFile)
	manifestDiff(ctx, res, r, env, path, orig, edited)
	return edited, nil
}

// gate refuses a promotion the --from environment does not back up:
// without a cluster, the tag must be the one in the --from value file; with
// one, the live Application must be Synced+Healthy at a commit whose value
// file has the tag, and when a digest is pinned, its pods must run that
// digest. Force turns a refusal into a recorded warning.
func gate(ctx context.Context, o *Options, res *Result, from envApp, tag, digest string, c *clone) error {
	var why string
	switch {
	case o.Cluster == nil:
		res.Gate = fmt.Sprintf("not checked (no cluster given); `%s` is taken from `%s`.", tag, from.TagAt())
		if tag != from.Tag.Value {
			why = fmt.Sprintf("%s sets %s to %q, not %q: %s does not run that tag", from.TagAt(), o.Key, from.Tag.Value, tag, o.From)
		}
	case c == nil:
		why = "the health gate needs the forge's history (a dry run without a forge cannot check the cluster)"
	default:
		live, err := fetchApplication(ctx, o.Cluster, from.Name(), from.App.Namespace)
		if err != nil {
			why = err.Error()
			break
		}
		if why = gateVerdict(live, from, o.Key, tag, c); why != "" {
			break
		}
		res.Gate = fmt.Sprintf("`%s` is Synced and Healthy at `%s`, whose `%s` sets `%s`.", from.Name(), live.Status.Sync.Revision[:10], from.ValueFile, tag)
		if digest == "" {
			break
		}
		pods, sel, err := listPods(ctx, o.Cluster, from)
		if err != nil {
			why = err.Error()
			break
		}
		if why = digestVerdict(pods, from.Name(), sel, digest); why == "" {
			res.Gate += fmt.Sprintf(" Its %d pod(s) run `%s`.", len(runningPods(pods)), digest)
		}
	}
	if why == "" {
		return nil
	}
	if !o.Force {
		return fmt.Errorf("refusing to promote %s to %s: %s (--force overrides, and says so in the pull request)", o.App, o.To, why)
	}
	res.Gate = "**overridden with --force**: " + why
	res.Warnings = append(res.Warnings, "promoted with --force although "+why)
	if digest == "" && from.digest() != "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s is deployed by tag: only %s's own tag has a known digest", tag, o.From))
	}
	return nil
}
