package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newLabCmd on Windows only says where the lab runs: its programs
// (kube-apiserver, Argo CD, Gitea) are supervised as Unix process groups.
func newLabCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "lab",
		Short: "Run a local Kubernetes control plane, Argo CD and a git forge (Linux only)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("the lab runs on Linux only; on Windows, use tug validate, diff, status, wait, bootstrap and promote against a cluster (see README, Platforms)")
		},
	}
}
