package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/tug-gitops/tug/internal/forge/connect"
	"github.com/tug-gitops/tug/internal/image"
	"github.com/tug-gitops/tug/internal/output"
	"github.com/tug-gitops/tug/internal/release"
)

func newReleaseCmd() *cobra.Command {
	var (
		o      release.Options
		t      connect.Target
		format output.Format
	)
	cmd := &cobra.Command{
		Use:   "release APP",
		Short: "Build APP's image from a commit, push it, and open the pull request that deploys it to the first environment",
		Long: `Release builds the image of apps/APP from the committed tree of --commit
(default HEAD; uncommitted edits are never built) without Docker, stamps the
tag into the binary, pushes it to the registry, and opens a pull request
setting image.tag and image.digest in the first environment's value file
(the first of tug.yaml's environments, usually dev; --env to choose). The
charts then deploy repository@digest: exactly the bytes that were pushed.

The build is reproducible: the same commit and tag give the same digest, so
running release again pushes nothing new and reuses the open pull request.
A tag the registry already holds with another digest is refused and nothing
is pushed or opened: tags are never moved. The pull request is made by
promote's code: a temporary clone, one branch (release/APP-ENV-TAG), never a
force-push.

The tag (--tag) defaults to the version tag on the commit without its
leading "v" (git tag v1.2.3 → 1.2.3), else 0.0.0-<first 12 hex digits of
the commit>, a pre-release that sorts below every real version.

The image name is image.repository in charts/APP/values.yaml. --registry
HOST[:PORT] (or $` + release.RegistryEnv + `) pushes to another registry, keeping the
path: ghcr.io/tug-gitops/backend goes to HOST/tug-gitops/backend (the lab's
node pulls ghcr.io through a mirror of it). Plain http is used only for
loopback hosts.

Registry credentials: $` + release.UserEnv + ` and $` + release.TokenEnv + ` for the push
registry, else docker's config.json and its credential helpers (docker
login, docker-credential-*), else none. On GitHub Actions use the
workflow's GITHUB_TOKEN with "packages: write". Credentials are never
printed, put in a URL or written to a file.

The forge flags and token are those of tug promote.`,
		Example: `  # Build and show the change; push nothing, open nothing
  tug release backend --dry-run

  # In the lab: forge and registry come from tug lab env
  eval "$(tug lab env)"
  tug release backend

  # A version tag on the commit names the release (v1.4.0 → 1.4.0)
  git tag v1.4.0 && tug release backend && tug release frontend

  # In a pipeline, pushing to ghcr.io and merging the dev pull request
  TUG_REGISTRY_USER=$GITHUB_ACTOR TUG_REGISTRY_TOKEN=$GITHUB_TOKEN \
    tug release backend --tag 1.4.0 --merge -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("release takes exactly one APP, e.g. tug release backend")}
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			root, err := repoRoot(o.RepoDir)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			apps, _ := image.ChartImages(root)
			var names []string
			for app := range apps {
				names = append(names, app)
			}
			sort.Strings(names)
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.App = args[0]
			if o.Tag != "" {
				if err := release.CheckTag(o.Tag); err != nil {
					return usageError{err}
				}
			}
			if o.RepoDir == "" {
				o.RepoDir = "."
				if root, err := repoRoot(""); err == nil {
					o.RepoDir = root
				}
			}
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			if !o.DryRun || t.Explicit() {
				f, err := openForge(cmd.Context(), o.RepoDir, t)
				if err != nil {
					return err
				}
				o.Forge = f
			}
			res, err := release.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			return format.Write(cmd.OutOrStdout(), res, func(w io.Writer) error { return writeReleaseText(w, res) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Tag, "tag", "", "image tag (default: the commit's version tag without \"v\", else 0.0.0-<commit>)")
	fl.StringVar(&o.Commit, "commit", "", "commit to build (default HEAD)")
	fl.StringVar(&o.Env, "env", "", "environment the pull request deploys to (default: the first in tug.yaml)")
	fl.StringVar(&o.Registry, "registry", os.Getenv(release.RegistryEnv), "push to HOST[:PORT] instead of the image's own registry, keeping the path ($"+release.RegistryEnv+")")
	fl.BoolVar(&o.Merge, "merge", false, "merge the pull request once open (for pipelines that allow it)")
	fl.BoolVar(&o.DryRun, "dry-run", false, "build and show the digest and the change; push nothing, open nothing")
	fl.StringVar(&o.RepoDir, "repo-dir", "", "the repository (default: the folder holding tug.yaml at or above the current one)")
	fl.StringVar(&t.Kind, "forge", os.Getenv("TUG_FORGE"), "gitea or github (default: inferred from the forge URL, else the repoURL; $TUG_FORGE)")
	fl.StringVar(&t.URL, "forge-url", os.Getenv("TUG_FORGE_URL"), "Gitea base URL, or GitHub Enterprise API URL (default: from the repoURL; $TUG_FORGE_URL)")
	fl.StringVar(&t.Owner, "owner", "", "repository owner on the forge (default: from tug.yaml repoURL or the origin remote)")
	fl.StringVar(&t.Name, "name", "", "repository name on the forge (default: from tug.yaml repoURL or the origin remote)")
	bindOutputFlag(cmd, &format, output.Text, output.JSON, output.YAML)
	return cmd
}

func writeReleaseText(w io.Writer, res *release.Result) error {
	fmt.Fprintf(w, "Built %s from %s (tag from %s)\n  digest %s (%.1fs)\n", res.Image, res.Commit[:12], res.TagSource, res.Digest, res.BuildSeconds)
	switch {
	case res.DryRun:
		fmt.Fprintf(w, "Would push %s and set it in %s (dry run: nothing pushed, nothing opened).\n\n%s", res.PushedTo, res.Change.ValueFile, res.Change.Diff)
		if res.Change.ManifestDiff != "" {
			fmt.Fprintf(w, "\nRendered manifests of %s:\n%s", res.Change.ToApp, res.Change.ManifestDiff)
		}
		return nil
	case res.AlreadyThere:
		fmt.Fprintf(w, "Already in the registry: %s\n", res.PushedTo)
	default:
		fmt.Fprintf(w, "Pushed %s (%.1fs)\n", res.PushedTo, res.PushSeconds)
	}
	c := res.Change
	if c.NoOp {
		_, err := fmt.Fprintf(w, "%s already runs %s at that digest (%s): no pull request needed.\n", c.ToApp, res.Tag, c.ValueFile)
		return err
	}
	verb := "Opened"
	if !c.PRCreated {
		verb = "Reusing open"
	}
	fmt.Fprintf(w, "%s pull request #%d: %s\n  %s %s: %s → %s (%s, branch %s)\n", verb, c.PR.Number, c.PR.URL, res.App, c.To, c.OldTag, c.NewTag, c.ValueFile, c.Branch)
	if c.Merged {
		fmt.Fprintf(w, "Merged: %s\n", c.MergeCommit)
	}
	return nil
}
