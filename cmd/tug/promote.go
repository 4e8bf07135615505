package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/forge/connect"
	"github.com/tug-gitops/tug/internal/kube"
	"github.com/tug-gitops/tug/internal/output"
	"github.com/tug-gitops/tug/internal/promote"
)

func newPromoteCmd() *cobra.Command {
	var (
		o          promote.Options
		t          connect.Target
		format     output.Format
		kubeconfig string
		kubeCtx    string
		argoNS     string
		wait       bool
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "promote APP",
		Short: "Promote an image tag from one environment to the next by pull request",
		Long: `Promote reads the image tag APP runs in --from (the last value file of the
Application APP-<from>), writes it into the value file of APP-<to> and opens a
pull request on the forge with the change and the rendered-manifest diff of
the --to environment. When --from's value file pins a digest (image.digest,
set by tug release), the digest is copied with the tag, so --to runs the
very image --from ran. Only those values' bytes change: comments, key order
and quoting stay as they are.

It works in a temporary clone of the forge's default branch (your working
tree is never touched), never force-pushes, rebuilds the change when the base
branch moves meanwhile, and reuses the open pull request when run again.
Already at the tag: nothing to do, exit 0.

Health gate: with --kubeconfig or --context, promote reads the live Argo CD
Application APP-<from> and refuses unless it is Synced and Healthy at a commit
whose value file holds the tag and, when a digest is pinned, every running
pod of the Application (label app.kubernetes.io/instance) reports that
digest in its imageID. Without them it only checks that --tag (if
given) is what --from's value file says. --force overrides either refusal and
records a warning in the pull request.

--merge merges the pull request; --merge --wait then waits (up to --timeout)
until APP-<to> is Synced and Healthy at the merge commit, as 'tug wait
--revision' does: right after a merge the app is still Synced and Healthy at
the old commit, so waiting for any Synced+Healthy would pass too early. The
wait reads the cluster of --kubeconfig/--context, else the current context.

The forge: the repository (--owner/--name) defaults to the repoURL in tug.yaml,
else the "origin" remote of --repo-dir. The kind (--forge) defaults to
` + connect.KindRule + `.
The token comes from $TUG_FORGE_TOKEN, else the file named by
$TUG_FORGE_TOKEN_FILE, else (GitHub) $GITHUB_TOKEN; it is never printed.
In the lab, 'eval "$(tug lab env)"' exports TUG_FORGE_URL and
TUG_FORGE_TOKEN_FILE, so no flag is needed.`,
		Example: `  # See what would change, offline, from the repository on disk
  tug promote backend --from dev --to prod --dry-run

  # In the lab: forge URL and token file come from tug lab env
  eval "$(tug lab env)"
  tug promote backend --from dev --to prod

  # Merge, then wait until backend-prod runs the merge commit
  tug promote backend --from dev --to prod --merge --wait --timeout 5m

  # Gate on the dev Application being Synced+Healthy at a commit with that tag
  tug promote backend --from dev --to prod --kubeconfig ~/.kube/lab --context lab

  # In a pipeline that may merge on its own, on GitHub
  GITHUB_TOKEN=... tug promote frontend --from dev --to prod --merge -o json

  # Promote a specific tag dev does not run (the PR says it was forced)
  tug promote backend --from dev --to prod --tag 0.3.0 --force`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("promote takes exactly one APP, e.g. tug promote backend --from dev --to prod")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if wait && !o.Merge {
				return usageError{errors.New("--wait needs --merge: an unmerged pull request deploys nothing")}
			}
			o.App = args[0]
			if o.RepoDir == "" {
				o.RepoDir = "."
				if root, err := repoRoot(""); err == nil {
					o.RepoDir = root
				}
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			o.Logger = log
			if !o.DryRun || t.Explicit() {
				f, err := openForge(cmd.Context(), o.RepoDir, t)
				if err != nil {
					return err
				}
				o.Forge = f
			}
			if kubeconfig != "" || kubeCtx != "" || wait {
				cfg, err := kube.RESTConfig(kubeconfig, kubeCtx)
				if err != nil {
					return usageError{err}
				}
				if kubeconfig != "" || kubeCtx != "" {
					o.Cluster = &promote.Cluster{Config: cfg, Namespace: argoNS}
				}
				if wait {
					o.Wait = &promote.Wait{Config: cfg, Namespace: argoNS, Timeout: timeout, Progress: cmd.ErrOrStderr()}
				}
			}
			if o.Cluster == nil {
				log.Info("health gate skipped: no --kubeconfig/--context given, so the tag is checked against the --from value file only")
			}
			res, err := promote.Run(cmd.Context(), o)
			if err != nil {
				return promoteError(cmd, res, err)
			}
			return format.Write(cmd.OutOrStdout(), res, func(w io.Writer) error { return writePromoteText(w, res, o.DryRun) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.From, "from", "dev", "environment whose tag is promoted")
	fl.StringVar(&o.To, "to", "prod", "environment whose value file changes")
	fl.StringVar(&o.Tag, "tag", "", "tag to promote (default: the tag --from runs)")
	fl.StringVar(&o.Key, "key", "image.tag", "dotted path of the tag in the value files")
	fl.BoolVar(&o.Merge, "merge", false, "merge the pull request once open (for pipelines that allow it)")
	fl.BoolVar(&wait, "wait", false, "with --merge: wait until APP-<to> is Synced and Healthy at the merge commit")
	fl.DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	fl.BoolVar(&o.DryRun, "dry-run", false, "show the change and the rendered-manifest diff; touch nothing")
	fl.BoolVar(&o.Force, "force", false, "promote although the health gate refuses; the PR records a warning")
	fl.StringVar(&o.RepoDir, "repo-dir", "", "repository to read tug.yaml/origin from, and for a --dry-run without a forge the files (default: the folder holding tug.yaml at or above the current one)")
	fl.StringVar(&t.Kind, "forge", os.Getenv("TUG_FORGE"), "gitea or github (default: inferred from the forge URL, else the repoURL; $TUG_FORGE)")
	fl.StringVar(&t.URL, "forge-url", os.Getenv("TUG_FORGE_URL"), "Gitea base URL, or GitHub Enterprise API URL (default: from the repoURL; $TUG_FORGE_URL)")
	fl.StringVar(&t.Owner, "owner", "", "repository owner on the forge (default: from tug.yaml repoURL or the origin remote)")
	fl.StringVar(&t.Name, "name", "", "repository name on the forge (default: from tug.yaml repoURL or the origin remote)")
	fl.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster running Argo CD; enables the health gate")
	fl.StringVar(&kubeCtx, "context", "", "kubeconfig context; enables the health gate")
	fl.StringVar(&argoNS, "argocd-namespace", "", "namespace of the Application objects (default: as declared, else argocd)")
	bindOutputFlag(cmd, &format, output.Text, output.JSON, output.YAML)
	return cmd
}

// promoteError explains a promotion that merged but did not deploy in
// time: the apps that are not ready, as tug wait prints them (exit 1).
func promoteError(cmd *cobra.Command, res *promote.Result, err error) error {
	if res == nil || res.Deployed == nil || !(errors.Is(err, appstatus.ErrTimeout) || errors.Is(err, appstatus.ErrDegraded)) {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Merged pull request #%d (%s), but: %v\n", res.PR.Number, res.PR.URL, err)
	appstatus.WriteFailure(cmd.ErrOrStderr(), res.Deployed)
	return errFindings
}

func writePromoteText(w io.Writer, res *promote.Result, dryRun bool) error {
	switch {
	case res.NoOp:
		_, err := fmt.Fprintf(w, "%s already runs %s (%s): nothing to promote.\n", res.ToApp, res.NewTag, res.ValueFile)
		return err
	case dryRun:
		fmt.Fprintf(w, "Would promote %s %s → %s: %s → %s in %s (dry run: nothing changed).\n\n%s", res.App, res.From, res.To, res.OldTag, res.NewTag, res.ValueFile, res.Diff)
		fmt.Fprintf(w, "\nHealth gate: %s\n", res.Gate)
		for _, warn := range res.Warnings {
			fmt.Fprintf(w, "Warning: %s\n", warn)
		}
		if res.ManifestDiff != "" {
			fmt.Fprintf(w, "\nRendered manifests of %s:\n%s", res.ToApp, res.ManifestDiff)
		}
		return nil
	}
	verb := "Opened"
	if !res.PRCreated {
		verb = "Reusing open"
	}
	fmt.Fprintf(w, "%s pull request #%d: %s\n  %s %s → %s: %s → %s (%s, branch %s)\n", verb, res.PR.Number, res.PR.URL,
		res.App, res.From, res.To, res.OldTag, res.NewTag, res.ValueFile, res.Branch)
	if res.OldDigest != "" || res.NewDigest != "" {
		fmt.Fprintf(w, "  digest: %s → %s\n", orDash(res.OldDigest), orDash(res.NewDigest))
	}
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "  Warning: %s\n", warn)
	}
	if res.Merged {
		fmt.Fprintf(w, "Merged: %s\n", res.MergeCommit)
	}
	if res.Deployed != nil && res.Deployed.Ready {
		fmt.Fprintf(w, "Deployed: %s Synced and Healthy at %s after %.1fs\n", res.ToApp, appstatus.ShortRevision(res.MergeCommit), res.Deployed.Seconds)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
