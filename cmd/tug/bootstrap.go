package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/tug-gitops/tug/internal/bootstrap"
	"github.com/tug-gitops/tug/internal/output"
)

func newBootstrapCmd() *cobra.Command {
	var (
		kf              kubeFlags
		dryRun          bool
		showCredentials bool
		repoFlag        string
		repoURL         string
		format          output.Format
		skipWorkloads   bool
	)
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Install Argo CD from infra/argocd, secure its access, and apply the root Application",
		Long: `Bootstrap installs Argo CD into namespace argocd exactly as this repository
declares it, then hands the cluster over to Git:

  1. builds infra/argocd with the kustomize API (the pinned upstream v3.2.11
     install plus the hardening patches) and applies it server-side
     (CRDs first, then waits until they are Established);
  2. secures access: refuses to continue unless argocd-cm disables the
     built-in admin and declares the operator (login) and deployer (apiKey)
     accounts; deletes argocd-initial-admin-secret if present; generates
     the JWT signing key, the operator's password (stored in argocd-secret as
     a bcrypt hash, as Argo CD does) and a deployer API token (signed like
     'argocd account generate-token', its id registered in argocd-secret);
  3. applies infra/gitops/root.yaml: the platform AppProject and the root
     Application, from which Argo CD manages everything else.

Plaintext credentials are kept only in Secret argocd/tug-credentials (keys
operator-password and deployer-token) and printed only with
--show-credentials. Running bootstrap again changes nothing: existing
credentials are kept (and repaired, never regenerated, while they work).
--dry-run sends every write as a server-side dry run and prints the plan.`,
		Example: `  # See what would change on the current kubectl context
  tug bootstrap --dry-run

  # Install on a named context, then read the operator's password
  tug bootstrap --context prod-cluster
  kubectl -n argocd get secret tug-credentials -o jsonpath='{.data.operator-password}' | base64 -d

  # Print the generated credentials once, e.g. to store them in a vault
  tug bootstrap --show-credentials

  # Point the root Application at a mirror instead of tug.yaml's repoURL
  tug bootstrap --repo-url https://git.example.com/platform/tug.git

  # Re-check a running 'tug lab' (its Argo CD runs as processes, not pods)
  eval "$(tug lab env)"
  tug bootstrap --skip-workloads --repo-url "$TUG_FORGE_URL/tug-gitops/tug.git"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := repoRoot(repoFlag)
			if err != nil {
				return err
			}
			cfg, err := kf.config()
			if err != nil {
				return err
			}
			var out io.Writer = cmd.OutOrStdout()
			if !format.Human() {
				out = cmd.ErrOrStderr() // the plan is progress; stdout carries the data
			}
			opts := bootstrap.Options{
				RESTConfig: cfg, RepoRoot: root, DryRun: dryRun, ShowCredentials: showCredentials,
				RepoURL: repoURL, Out: out,
			}
			if skipWorkloads {
				opts.Exclude = bootstrap.IsWorkload
			}
			rep, err := bootstrap.Run(cmd.Context(), opts)
			if rep != nil && !format.Human() {
				if werr := format.Write(cmd.OutOrStdout(), rep, nil); werr != nil {
					return werr
				}
			}
			return err
		},
	}
	kf.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan; every write is a server-side dry run")
	cmd.Flags().BoolVar(&showCredentials, "show-credentials", false, "print the operator password and deployer token")
	cmd.Flags().StringVar(&repoFlag, "repo", "", "repository working tree (default: the folder holding tug.yaml at or above the current one)")
	cmd.Flags().StringVar(&repoURL, "repo-url", "", "Git URL for the root Application and platform project (default: as in infra/gitops/root.yaml)")
	cmd.Flags().BoolVar(&skipWorkloads, "skip-workloads", false, "apply all of infra/argocd but its Deployments, StatefulSets and Jobs, for an Argo CD whose components run outside the cluster (as in 'tug lab')")
	bindOutputFlag(cmd, &format, output.Text, output.JSON, output.YAML) // json/yaml: the report on stdout, the plan on stderr
	return cmd
}
