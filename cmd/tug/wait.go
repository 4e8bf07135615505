package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/output"
)

func newWaitCmd() *cobra.Command {
	var (
		kf        kubeFlags
		all       bool
		revision  string
		timeout   time.Duration
		format    output.Format
		namespace string
		terminate bool
		yes       bool
	)
	cmd := &cobra.Command{
		Use:   "wait [APP... | --all]",
		Short: "Wait until Applications (and a root's children) are Synced and Healthy at a commit",
		Long: `Wait blocks until every named Application, and for an app-of-apps every
child Application below it, is Synced and Healthy — at --revision when given.
A revision is a Git commit SHA (full, or 7+ characters); it applies to every
source from the named apps' repositories, so a child from the same repository
must be at that commit too.

Rather than wait for Argo CD's poll (up to three minutes), tug asks Argo CD to
refresh each app that is behind by setting the annotation
argocd.argoproj.io/refresh=normal, and asks again every few seconds while an
app is still not at the revision. Between reads it watches the Applications,
so it sees Synced and Healthy as soon as Argo CD writes them (every 2 s it
reads again anyway, which is all it does where watching is not allowed).
Only Kubernetes access to Applications is needed (get, list, watch and
patch), no Argo CD token.

An app whose sync operation is still running is not ready, whatever its sync
status says: Argo CD starts no other sync while one runs or waits to retry.
Progress lines show the operation's phase, revision, retry count and
message. When a sync of an older commit keeps failing and retrying, the
report says what becomes of it: with syncPolicy.retry.refresh: true its next
retry syncs the latest commit; without it, Argo CD keeps retrying the old
commit until the retries run out. --terminate-stale ends such an operation
the way ` + "`argocd app terminate-op`" + ` does (it sets the Application's
status.operationState.phase to Terminating through the Kubernetes API), after
asking on the terminal, or at once with --yes; automated sync then syncs the
current commit.

Progress goes to stderr whenever an app's state changes. Exit status: 0 when
everything is Synced and Healthy; 1 on timeout, when an app is Degraded at
the revision or its sync failed for good, printing each failing app's
conditions, sync operation and unhealthy resources; 2 on misuse.`,
		Example: `  # After merging: wait for the whole tree at the merged commit
  tug wait root --revision "$(git rev-parse HEAD)" --timeout 5m

  # Two apps, whatever revision they are at
  tug wait backend-dev frontend-dev

  # Every Application, machine-readable result
  tug wait --all --timeout 2m -o json

  # A fix was merged while a sync of the broken commit keeps retrying:
  # end that sync (asks first) so that Argo CD syncs the fix
  tug wait backend-prod --revision <fix sha> --terminate-stale

  # The same in a pipeline (no terminal to ask on)
  tug wait backend-prod --revision <fix sha> --terminate-stale --yes`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !all {
				return usageError{errors.New("name the Applications to wait for, or pass --all")}
			}
			if len(args) > 0 && all {
				return usageError{errors.New("give either APP names or --all, not both")}
			}
			if yes && !terminate {
				return usageError{errors.New("--yes only confirms --terminate-stale; pass both or neither")}
			}
			var confirm func(appstatus.State) bool
			if terminate {
				if !yes && !isTerminal(os.Stdin) {
					return usageError{errors.New("--terminate-stale asks before ending an operation, and stdin is not a terminal: add --yes to end stale operations without asking")}
				}
				confirm = confirmTerminate(cmd.InOrStdin(), cmd.ErrOrStderr(), yes)
			}
			dyn, err := kf.dynamic()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := appstatus.Wait(ctx, dyn, appstatus.WaitOptions{
				Namespace: namespace, Apps: args, All: all, Revision: revision, Progress: cmd.ErrOrStderr(),
				TerminateStale: confirm,
			})
			if res != nil && !format.Human() {
				if werr := format.Write(cmd.OutOrStdout(), res, nil); werr != nil {
					return werr
				}
			}
			switch {
			case err == nil:
				if format.Human() {
					at := ""
					if revision != "" {
						at = " at " + appstatus.ShortRevision(revision)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%d Applications Synced and Healthy%s after %.1fs\n", len(res.Apps), at, res.Elapsed.Seconds())
				}
				return nil
			case errors.Is(err, appstatus.ErrTimeout), errors.Is(err, appstatus.ErrDegraded), errors.Is(err, appstatus.ErrSyncFailed):
				reason := fmt.Sprintf("timed out after %s", timeout)
				switch {
				case errors.Is(err, appstatus.ErrDegraded):
					reason = "Degraded"
				case errors.Is(err, appstatus.ErrSyncFailed):
					reason = "sync failed; Argo CD will not retry this revision"
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Not ready (%s):\n", reason)
				if res != nil {
					appstatus.WriteFailure(cmd.ErrOrStderr(), res)
				}
				return errFindings
			default:
				return err
			}
		},
	}
	kf.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "wait for every Application in the namespace")
	cmd.Flags().StringVar(&revision, "revision", "", "Git commit SHA the apps must be synced to (full or 7+ characters)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	bindOutputFlag(cmd, &format, output.Text, output.JSON, output.YAML)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", appstatus.DefaultNamespace, "namespace of the Applications")
	cmd.Flags().BoolVar(&terminate, "terminate-stale", false, "end a sync that keeps retrying another revision than the one waited for (like argocd app terminate-op), after asking")
	cmd.Flags().BoolVar(&yes, "yes", false, "with --terminate-stale: end stale operations without asking")
	return cmd
}

// confirmTerminate asks on the terminal (or, with yes, only says) before a
// stale operation is terminated.
func confirmTerminate(in io.Reader, out io.Writer, yes bool) func(appstatus.State) bool {
	answers := bufio.NewReader(in)
	return func(s appstatus.State) bool {
		op := s.Op
		fmt.Fprintf(out, "%s: %s\n", s.Name, s.Advice)
		what := fmt.Sprintf("Terminate the sync of %s on %s, as `argocd app terminate-op %s` would? Argo CD stops it, and its automated sync then syncs %s.",
			op.RevisionText(), s.Name, s.Name, appstatus.ShortRevision(s.Target))
		if yes {
			fmt.Fprintf(out, "%s Yes (--yes).\n", what)
			return true
		}
		fmt.Fprintf(out, "%s [y/N] ", what)
		line, _ := answers.ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes":
			return true
		}
		fmt.Fprintf(out, "Left running.\n")
		return false
	}
}

// isTerminal reports whether f is a terminal (not /dev/null, a pipe or a
// file), i.e. someone can answer a question on it.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
