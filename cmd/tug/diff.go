package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tug-gitops/tug/internal/diff"
	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/forge/connect"
	"github.com/tug-gitops/tug/internal/output"
)

func newDiffCmd() *cobra.Command {
	var (
		o       diff.Options
		t       connect.Target
		format  output.Format
		comment int64
	)
	cmd := &cobra.Command{
		Use:   "diff [BASE [HEAD]]",
		Short: "Show what a change does to every Application's rendered manifests",
		Long: `Diff renders every Argo CD Application in the repository (ApplicationSet
list generators expanded) at two revisions, pairs them by name and shows,
per Application, the resources added, removed and changed, with a unified
diff of each changed resource's YAML. Keys are sorted; what Argo CD does not
compare is left out (status, server-set metadata, spec.ignoreDifferences);
Secret values are masked as Argo CD masks them, so only which keys changed
shows. Applications affected by a change outside their own files (a shared
values file, a chart template, their AppProject) are listed as such.

BASE defaults to the merge base of HEAD with the default branch
(origin/HEAD, origin/main, origin/master, main or master); HEAD defaults to
the working tree, uncommitted and untracked files included. Committed
revisions are read from git objects into a temporary directory: your
checkout is never touched. No cluster and no network are used.

--comment N posts the Markdown rendering as one sticky comment on pull
request N of the forge (found as for tug promote: ` + connect.KindRule + `;
token from $TUG_FORGE_TOKEN, else the file named by $TUG_FORGE_TOKEN_FILE,
else on GitHub $GITHUB_TOKEN): a re-run edits that comment, never adds a
second.

Exit status: 0 no Application changes, 1 changes, 2 error (like diff(1)).`,
		Example: `  # What does my branch (committed or not) change, against the default branch?
  tug diff

  # Between two commits, as JSON
  tug diff HEAD~1 HEAD -o json | jq '.applications[] | {name, change}'

  # The pull-request check: Markdown, posted as one sticky comment
  tug diff origin/main HEAD -o markdown --comment 42 --forge github`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 2 {
				return usageError{errors.New("diff takes at most two revisions: tug diff [BASE [HEAD]]")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				o.Base = args[0]
			}
			if len(args) > 1 {
				o.Head = args[1]
			}
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			res, err := diff.Run(cmd.Context(), o)
			if err != nil {
				return usageError{err} // exit 2: diff could not compare
			}
			if err := writeDiff(cmd, res, format); err != nil {
				return usageError{err}
			}
			if cmd.Flags().Changed("comment") {
				if err := postDiffComment(cmd, res, o.Dir, t, comment); err != nil {
					return usageError{err}
				}
			}
			if !res.Empty() {
				return errFindings
			}
			return nil
		},
	}
	fl := cmd.Flags()
	bindOutputFlag(cmd, &format, output.Text, output.JSON, output.Markdown)
	fl.StringVar(&o.Dir, "repo-dir", ".", "a directory inside the repository's git work tree")
	fl.Int64Var(&comment, "comment", 0, "post or update the sticky diff comment on this pull request number")
	fl.StringVar(&t.Kind, "forge", os.Getenv("TUG_FORGE"), "gitea or github, for --comment (default: inferred from the forge URL, else the repoURL; $TUG_FORGE)")
	fl.StringVar(&t.URL, "forge-url", os.Getenv("TUG_FORGE_URL"), "Gitea base URL, or GitHub Enterprise API URL, for --comment ($TUG_FORGE_URL)")
	fl.StringVar(&t.Owner, "owner", "", "repository owner on the forge, for --comment (default: from tug.yaml repoURL or the origin remote)")
	fl.StringVar(&t.Name, "name", "", "repository name on the forge, for --comment (default: from tug.yaml repoURL or the origin remote)")
	return cmd
}

func writeDiff(cmd *cobra.Command, res *diff.Result, format output.Format) error {
	out := cmd.OutOrStdout()
	switch format {
	case output.JSON:
		return diff.WriteJSON(out, res)
	case output.Markdown:
		return diff.WriteMarkdown(out, res, diff.MarkdownOptions{Command: diffCommand(res)})
	}
	color := false
	if f, ok := out.(*os.File); ok {
		color = term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == ""
	}
	return diff.WriteText(out, res, color)
}

func postDiffComment(cmd *cobra.Command, res *diff.Result, dir string, t connect.Target, number int64) error {
	if number <= 0 {
		return fmt.Errorf("--comment %d: give the pull request's number", number)
	}
	f, err := connect.Open(cmd.Context(), dir, t)
	if err != nil {
		return err
	}
	body := diff.Markdown(res, diff.MarkdownOptions{Command: diffCommand(res)})
	c, created, err := forge.UpsertComment(cmd.Context(), f, number, diff.Marker, body)
	if err != nil {
		return err
	}
	verb := "updated"
	if created {
		verb = "posted"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s the diff comment on pull request #%s: %s\n", verb, strconv.FormatInt(number, 10), c.URL)
	return nil
}

// diffCommand is the command line that shows the whole diff locally.
func diffCommand(res *diff.Result) string {
	base, head := res.Base.Commit, res.Head.Commit
	if head == "" {
		return "tug diff " + short(base)
	}
	return "tug diff " + short(base) + " " + short(head)
}

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
