package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/output"
)

func newStatusCmd() *cobra.Command {
	var (
		kf        kubeFlags
		format    output.Format
		namespace string
	)
	cmd := &cobra.Command{
		Use:   "status [APP...]",
		Short: "Show every Argo CD Application: sync, health, revision, conditions, children under their root",
		Long: `Status lists the Argo CD Applications in namespace argocd with their sync
status, health, the Git revision they were last compared at and their
conditions (for example an InvalidSpecError naming an unknown cluster).
Applications managed by another Application (app-of-apps) are shown under it.

It reads Application resources through the Kubernetes API, so a kubeconfig
that may read applications.argoproj.io is all it needs: no Argo CD login or
token. Naming APPs limits the output to them and their children.`,
		Example: `  # The whole tree, as a table
  tug status

  # One app and its children, on another cluster
  tug status root --context prod-cluster

  # Machine-readable: the apps that are not Healthy
  tug status -o json | jq '.. | objects | select(.health? and .health != "Healthy") | .name'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			dyn, err := kf.dynamic()
			if err != nil {
				return err
			}
			apps, err := appstatus.List(cmd.Context(), dyn, namespace)
			if err != nil {
				return err
			}
			trees := appstatus.Tree(apps)
			if len(args) > 0 {
				if trees, err = selectTrees(trees, args); err != nil {
					return err
				}
			}
			return format.Write(cmd.OutOrStdout(), trees, func(w io.Writer) error {
				if len(trees) == 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "No Applications in namespace %s.\n", namespace)
					return nil
				}
				return appstatus.WriteTable(w, trees)
			})
		},
	}
	kf.register(cmd)
	bindOutputFlag(cmd, &format, output.DataFormats...)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", appstatus.DefaultNamespace, "namespace of the Applications")
	return cmd
}

// selectTrees returns the subtrees rooted at the named apps.
func selectTrees(trees []*appstatus.App, names []string) ([]*appstatus.App, error) {
	byName := map[string]*appstatus.App{}
	for _, a := range appstatus.Flatten(trees) {
		if _, seen := byName[a.Name]; !seen {
			byName[a.Name] = a
		}
	}
	var out []*appstatus.App
	for _, n := range names {
		a, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("no Application %q (tug status lists them all)", n)
		}
		out = append(out, a)
	}
	return out, nil
}
