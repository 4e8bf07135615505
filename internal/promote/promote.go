// Package promote moves an image tag from one environment to the next by
// pull request: it reads the tag APP runs in --from (its value file, and
// when a cluster is given, the live Argo CD Application's health and synced
// revision), writes it into the --to value file without disturbing anything
// else, and opens a pull request on the forge with the rendered-manifest
// diff. All git work happens in a temporary clone of the forge's default
// branch; the user's working tree is never touched, and nothing is ever
// force-pushed.
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
	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/fsutil"
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
	// NoOp is true when --to already runs NewTag: nothing was changed.
	NoOp bool `json:"noOp"`
	// Gate describes the health gate's outcome.
	Gate     string   `json:"gate,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Diff is the value-file change; ManifestDiff the rendered one.
	Diff         string `json:"diff,omitempty"`
	ManifestDiff string `json:"manifestDiff,omitempty"`
	RenderError  string `json:"renderError,omitempty"`

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
}

// Run performs (or with DryRun, shows) one promotion.
func Run(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	if err := o.validate(); err != nil {
		return nil, err
	}
	res := &Result{App: o.App, From: o.From, To: o.To}
	if o.Forge == nil {
		return res, runLocalDryRun(ctx, &o, res)
	}
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		moved, err := attemptOnce(ctx, &o, res, attempt)
		if err != nil {
			return nil, err
		}
		if !moved {
			break
		}
		if attempt >= maxAttempts {
			return nil, fmt.Errorf("%s kept moving during %d attempts; try again", res.Base, maxAttempts)
		}
		o.Logger.Info("base branch moved while preparing the change; rebuilding on the new head", "branch", res.Base, "attempt", attempt+1)
	}
	if res.NoOp || o.DryRun {
		return res, nil
	}
	res.TimeToPR = time.Since(start)
	res.TimeToPRSeconds = res.TimeToPR.Round(time.Millisecond).Seconds()
	if o.Merge {
		merged, err := o.Forge.MergePullRequest(ctx, res.PR.Number, res.mergeMessage())
		if err != nil {
			return res, err
		}
		res.PR, res.Merged, res.MergeCommit = merged, true, merged.MergeCommit
		if o.Wait != nil {
			o.Logger.Info("merged; waiting for the Application to be Synced and Healthy at the merge commit", "application", res.ToApp, "commit", appstatus.ShortRevision(res.MergeCommit), "timeout", o.Wait.Timeout)
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
		return errors.New("promote needs a forge (--forge, --forge-url and a token in $TUG_FORGE_TOKEN); only --dry-run works without one")
	}
	if o.Key == "" {
		o.Key = "image.tag"
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

// attemptOnce clones the base, builds the change and, unless dry-run or
// no-op, pushes it and opens (or reuses) the PR. moved reports that the
// base branch moved before the push; the caller then tries again.
func attemptOnce(ctx context.Context, o *Options, res *Result, attempt int) (moved bool, err error) {
	f := o.Forge
	res.Base = f.DefaultBranch()
	c, err := cloneBase(ctx, f.CloneURL(), f.GitAuth(), res.Base)
	if err != nil {
		return false, err
	}
	defer c.Close()
	res.BaseCommit = c.head.String()

	from, to, tag, edited, err := plan(ctx, o, res, c.dir, c)
	if err != nil || res.NoOp || o.DryRun {
		return false, err
	}

	res.Branch = branchName(o.App, o.To, tag)
	if pr, err := f.FindOpenPullRequest(ctx, res.Branch, res.Base); err != nil {
		return false, err
	} else if pr != nil {
		return false, reuseOpen(ctx, o, res, c, pr, to, tag)
	}

	commit, err := c.commitFile(res.Branch, to.ValueFile, edited, commitMessage(o, from, to, tag), o.Author)
	if err != nil {
		return false, err
	}
	res.Commit = commit.String()
	if o.beforePush != nil {
		if err := o.beforePush(ctx, attempt); err != nil {
			return false, err
		}
	}
	heads, err := remoteHeads(ctx, c.url, c.auth)
	if err != nil {
		return false, err
	}
	if heads[res.Base] != c.head {
		return true, nil
	}
	if existing, ok := heads[res.Branch]; ok && existing != commit {
		// A branch of that name is left from an earlier promotion whose PR
		// is closed or merged: never overwrite it, use a name tied to this base.
		res.Branch = res.Branch + "-" + c.head.String()[:7]
		if commit, err = c.commitFile(res.Branch, to.ValueFile, edited, commitMessage(o, from, to, tag), o.Author); err != nil {
			return false, err
		}
		res.Commit = commit.String()
	}
	if err := c.pushBranch(ctx, res.Branch); err != nil {
		return false, fmt.Errorf("%w (tug never force-pushes; delete the stale branch %s on the forge if it is yours)", err, res.Branch)
	}
	pr, created, err := f.OpenPullRequest(ctx, forge.NewPullRequest{
		Head: res.Branch, Base: res.Base, Title: title(o, to.Tag.Value, tag), Body: prBody(o, res, from, to, tag),
	})
	if err != nil {
		return false, err
	}
	res.PR, res.PRCreated = pr, created
	o.Logger.Info("pull request open", "number", pr.Number, "url", pr.URL, "created", created)
	return false, nil
}

// reuseOpen adopts the open PR for the same target after checking that its
// branch really sets the tag.
func reuseOpen(ctx context.Context, o *Options, res *Result, c *clone, pr *forge.PullRequest, to envApp, tag string) error {
	tip, err := c.fetchBranch(ctx, pr.Head)
	if err != nil {
		return err
	}
	data, err := c.fileAt(tip, to.ValueFile)
	if err != nil {
		return err
	}
	got, err := yamledit.Get(data, o.Key)
	if err != nil {
		return fmt.Errorf("open pull request #%d (%s): %s: %w", pr.Number, pr.URL, to.ValueFile, err)
	}
	if got.Value != tag {
		return fmt.Errorf("open pull request #%d (%s) on branch %s sets %s to %q, not %q; close it or fix its branch", pr.Number, pr.URL, pr.Head, o.Key, got.Value, tag)
	}
	res.PR, res.PRCreated, res.Commit = pr, false, tip.String()
	o.Logger.Info("reusing the open pull request", "number", pr.Number, "url", pr.URL)
	return nil
}

// plan reads both environments from the repository at root, applies the
// gate, and computes the edited --to value file and the diffs.
func plan(ctx context.Context, o *Options, res *Result, root string, c *clone) (from, to envApp, tag string, edited []byte, err error) {
	r, err := repo.Load(root)
	if err != nil {
		return from, to, "", nil, err
	}
	if from, err = findEnvApp(r, o.App, o.From, o.Key); err != nil {
		return from, to, "", nil, err
	}
	if to, err = findEnvApp(r, o.App, o.To, o.Key); err != nil {
		return from, to, "", nil, err
	}
	tag = o.Tag
	if tag == "" {
		tag = from.Tag.Value
	}
	res.FromApp, res.ToApp, res.ValueFile = from.Name(), to.Name(), to.ValueFile
	res.toNamespace = to.App.Namespace
	res.OldTag, res.NewTag = to.Tag.Value, tag
	if to.Tag.Value == tag {
		res.NoOp = true
		return from, to, tag, nil, nil
	}
	if err := gate(ctx, o, res, from, tag, c); err != nil {
		return from, to, "", nil, err
	}
	path := filepath.Join(root, filepath.FromSlash(to.ValueFile))
	orig, err := os.ReadFile(path)
	if err != nil {
		return from, to, "", nil, err
	}
	edited, _, err = yamledit.Set(orig, o.Key, tag)
	if err != nil {
		return from, to, "", nil, fmt.Errorf("%s: %w", to.ValueFile, err)
	}
	res.Diff = unifiedDiff(string(orig), string(edited), "a/"+to.ValueFile, "b/"+to.ValueFile)
	manifestDiff(ctx, res, root, to, path, orig, edited)
	return from, to, tag, edited, nil
}

// manifestDiff renders the --to environment before and after the edit.
// The file is restored afterwards; the commit writes it again. A render
// failure is reported in the PR, not fatal: the reviewer should see it.
func manifestDiff(ctx context.Context, res *Result, root string, to envApp, path string, orig, edited []byte) {
	before, err := renderEnv(ctx, root, to)
	if err == nil {
		if err = os.WriteFile(path, edited, 0o644); err == nil {
			var after string
			after, err = renderEnv(ctx, root, to)
			res.ManifestDiff = unifiedDiff(before, after, to.Name()+" (before)", to.Name()+" (after)")
		}
		_ = os.WriteFile(path, orig, 0o644)
	}
	if err != nil {
		res.RenderError = err.Error()
		res.Warnings = append(res.Warnings, "the chart could not be rendered: "+err.Error())
	}
}

// gate refuses a promotion the --from environment does not back up:
// without a cluster, the tag must be the one in the --from value file; with
// one, the live Application must be Synced+Healthy at a commit whose value
// file has the tag. Force turns a refusal into a recorded warning.
func gate(ctx context.Context, o *Options, res *Result, from envApp, tag string, c *clone) error {
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
		if why = gateVerdict(live, from, o.Key, tag, c); why == "" {
			res.Gate = fmt.Sprintf("`%s` is Synced and Healthy at `%s`, whose `%s` sets `%s`.", from.Name(), live.Status.Sync.Revision[:10], from.ValueFile, tag)
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
	return nil
}

// runLocalDryRun shows the change using the repository on disk.
func runLocalDryRun(ctx context.Context, o *Options, res *Result) error {
	root, err := filepath.Abs(o.RepoDir)
	if err != nil {
		return err
	}
	// Render and edit in a scratch copy: the working tree stays untouched
	// even for the moment the manifest diff needs the edited file on disk.
	scratch, err := os.MkdirTemp("", "tug-promote-dry-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	if err := fsutil.CopyTree(root, scratch); err != nil {
		return fmt.Errorf("copy %s for the dry run: %w", root, err)
	}
	_, _, _, _, err = plan(ctx, o, res, scratch, nil)
	return err
}

func (r *Result) mergeMessage() string {
	return fmt.Sprintf("Merge promotion of %s to %s: %s → %s (#%d)", r.App, r.To, r.OldTag, r.NewTag, r.PR.Number)
}
