package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/drift"
	"github.com/tug-gitops/tug/internal/output"
)

func newVerifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove properties of a running Argo CD (drift: self-heal)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("name a check: tug verify drift APP")}
		},
	}
	cmd.AddCommand(newVerifyDriftCmd())
	return cmd
}

func newVerifyDriftCmd() *cobra.Command {
	var (
		kf        kubeFlags
		timeout   time.Duration
		kinds     []string
		repeat    int
		format    output.Format
		namespace string
	)
	cmd := &cobra.Command{
		Use:   "drift APP",
		Short: "Change an app's live resources and time how long Argo CD takes to put them back",
		Long: `Verify drift proves that self-heal works for one Application. One at a
time, it changes a live resource the app manages and measures how long Argo
CD takes to restore the state from Git:

  scale           a managed Deployment gets one more replica
  image           that Deployment's first container gets another image tag
                  (the current tag + "-tug-drift-check")
  delete-service  a managed Service is deleted (it must come back)

Before each drift it waits for the app to be Synced. Whatever Argo CD did not
put back within --timeout, tug restores itself, so a failed check leaves the
cluster as it found it. The app needs syncPolicy.automated.selfHeal: true.

Exit status: 0 when every drift was healed in time, 1 otherwise (the table
says which), 2 on misuse. Run it against a non-production app first: the
drift is real while it lasts.`,
		Example: `  # All three drifts on the dev backend
  tug verify drift backend-dev

  # Only the Service deletion, with a tighter limit
  tug verify drift frontend-prod --kinds delete-service --timeout 20s

  # Scale three times in a row to see Argo CD's self-heal backoff
  tug verify drift backend-dev --kinds scale --repeat 3 -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("verify drift takes one Application name, got %d", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, k := range kinds {
				if !containsString(drift.AllKinds, k) {
					return usageError{fmt.Errorf("unknown drift kind %q: use %s", k, strings.Join(drift.AllKinds, ", "))}
				}
			}
			if repeat < 1 {
				return usageError{fmt.Errorf("--repeat must be at least 1")}
			}
			dyn, err := kf.dynamic()
			if err != nil {
				return err
			}
			// Cancelled on Ctrl-C too: drift.Verify restores on its own
			// context, so an interrupted run still cleans up.
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			rep, err := drift.Verify(ctx, dyn, drift.Options{
				Namespace: namespace, App: args[0], Timeout: timeout, Kinds: kinds, Repeat: repeat, Progress: cmd.ErrOrStderr(),
			})
			if rep != nil && len(rep.Checks) > 0 {
				if werr := format.Write(cmd.OutOrStdout(), rep, func(w io.Writer) error { return drift.WriteTable(w, rep) }); werr != nil {
					return werr
				}
			}
			if err != nil {
				return err
			}
			if !rep.OK {
				return errFindings
			}
			return nil
		},
	}
	kf.register(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long Argo CD gets to heal each drift")
	cmd.Flags().StringSliceVar(&kinds, "kinds", drift.AllKinds, "drifts to cause: "+strings.Join(drift.AllKinds, ", "))
	cmd.Flags().IntVar(&repeat, "repeat", 1, "cause each drift this many times in a row")
	bindOutputFlag(cmd, &format, output.DataFormats...)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", appstatus.DefaultNamespace, "namespace of the Application")
	return cmd
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
