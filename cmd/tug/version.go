package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tug-gitops/tug/internal/version"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print tug's version and the versions it pins",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "tug %s (Argo CD %s, Kubernetes %s)\n", version.String(), version.ArgoCD, version.Kubernetes)
			return nil
		},
	}
}
