package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

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
app is still not at the revision. Only Kubernetes access to Applications is
needed (get, list and patch), no Argo CD token.

Progress goes to stderr whenever an app's state changes. Exit status: 0 when
everything is Synced and Healthy; 1 on timeout or when an app is Degraded at
the revision, printing each failing app's conditions, last sync result and
unhealthy resources; 2 on misuse.`,
		Example: `  # After merging: wait for the whole tree at the merged commit
  tug wait root --revision "$(git rev-parse HEAD)" --timeout 5m

  # Two apps, whatever revision they are at
  tug wait backend-dev frontend-dev

  # Every Application, machine-readable result
  tug wait --all --timeout 2m -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !all {
				return usageError{errors.New("name the Applications to wait for, or pass --all")}
			}
			if len(args) > 0 && all {
				return usageError{errors.New("give either APP names or --all, not both")}
			}
			dyn, err := kf.dynamic()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := appstatus.Wait(ctx, dyn, appstatus.WaitOptions{
				Namespace: namespace, Apps: args, All: all, Revision: revision, Progress: cmd.ErrOrStderr(),
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
			case errors.Is(err, appstatus.ErrTimeout), errors.Is(err, appstatus.ErrDegraded):
				reason := fmt.Sprintf("timed out after %s", timeout)
				if errors.Is(err, appstatus.ErrDegraded) {
					reason = "Degraded"
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
	return cmd
}
