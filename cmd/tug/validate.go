package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tug-gitops/tug/internal/output"
	"github.com/tug-gitops/tug/internal/repo"
	"github.com/tug-gitops/tug/internal/validate"
)

func newValidateCmd() *cobra.Command {
	var (
		format     output.Format
		strict     bool
		listRules  bool
		roots      []string
		enableHelm bool
		online     bool
	)
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check a GitOps repository offline before merge",
		Long: `Validate checks what Argo CD would only report after merge, from what Argo CD
would see: it starts at the root Applications (those no other Application
deploys, plus any named with --root), renders their sources as Argo CD does
(Helm SDK, kustomize API with argocd-cm's kustomize.buildOptions, plain
directories), takes the Applications and ApplicationSets out of the rendered
output (Helm-templated and Kustomize-patched app-of-apps), expands
ApplicationSets with the ApplicationSet controller's own generators (list,
git directories/files from the checkout, clusters, matrix, merge), and checks
each: strict specs (Argo CD's own types), destinations (exact server match),
projects (Argo CD's own permission checks), value files and $refs, rendered
manifests against the Kubernetes 1.34 schema (plus CRDs in the repo), and
conflicts between Applications of one tree.

No cluster is used and no network connection is opened: charts from Helm
repositories and OCI registries, remote kustomize bases, remote value files
and chart dependencies missing from charts/ are reported as source.remote
(info) with their URL. With --online they are fetched — charts and
dependencies with the Helm SDK (Chart.lock's versions when present) and
value files over http(s) into $XDG_CACHE_HOME/tug/charts (an exact chart
version is fetched once), remote bases by kustomize's loader into a
temporary clone — never into the checkout, and what they render is
checked. YAML files no Application reads are not errors.

The repository root is the nearest directory at or above PATH holding tug.yaml
or .git. Which sources are "this repository": tug.yaml's repoURL, else the
checkout's origin remote, else the repoURL of the sources whose paths exist;
the summary says which. tug.yaml also declares the clusters Argo CD knows.

Exit status: 0 clean (info and, without --strict, warnings allowed),
1 errors found, 2 misuse or internal failure.`,
		Example: `  # Check the repository you are in
  tug validate

  # Treat warnings as errors, as a required PR check would
  tug validate --strict .

  # The root Application lives outside the repository (applied by Terraform)
  tug validate --root ../platform/argocd-root.yaml .

  # Argo CD's argocd-cm (elsewhere) sets kustomize.buildOptions: --enable-helm
  tug validate --enable-helm .

  # Also fetch and check Helm-repository and OCI charts, missing chart
  # dependencies, remote value files and remote kustomize bases
  tug validate --online .

  # Machine-readable results, or SARIF for GitHub code scanning
  tug validate -o json | jq '.findings[] | select(.severity == "error")'
  tug validate -o sarif > tug.sarif

  # Explain every rule ID
  tug validate --list-rules`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listRules {
				return validate.WriteRules(cmd.OutOrStdout())
			}
			if len(args) == 0 {
				args = []string{"."}
			}
			res := &validate.Result{}
			for _, p := range args {
				r, err := loadForValidate(p)
				if err != nil {
					return usageError{err}
				}
				one, err := validate.Run(cmd.Context(), r, validate.Options{Roots: roots, KustomizeBuildOptions: buildOptions(enableHelm), Online: online})
				if err != nil {
					return usageError{err} // a bad --root, or an internal failure: exit 2
				}
				res.Findings = append(res.Findings, one.Findings...)
				res.Apps += one.Apps
				res.Projects += one.Projects
				res.Roots = append(res.Roots, one.Roots...)
				if res.RepoURL == "" {
					res.RepoURL, res.RepoURLSource = one.RepoURL, one.RepoURLSource
				}
			}
			if err := writeValidateResult(cmd, res, format); err != nil {
				return err
			}
			limit := validate.Error
			if strict {
				limit = validate.Warning
			}
			if res.Count(limit) > 0 {
				return errFindings
			}
			return nil
		},
	}
	bindOutputFlag(cmd, &format, output.Text, output.JSON, output.SARIF)
	cmd.Flags().BoolVar(&strict, "strict", false, "treat warnings as errors")
	cmd.Flags().BoolVar(&listRules, "list-rules", false, "list every rule ID with its severity and meaning, then exit")
	cmd.Flags().BoolVar(&enableHelm, "enable-helm", false, "build Kustomize helmCharts, as Argo CD does when argocd-cm's kustomize.buildOptions has --enable-helm (for an argocd-cm kept outside the repository); needs helm on PATH")
	cmd.Flags().BoolVar(&online, "online", false, "fetch Helm-repository and OCI charts, missing chart dependencies and remote value files (cached in $XDG_CACHE_HOME/tug/charts) and remote kustomize bases, and check what they render; without it no network connection is opened")
	cmd.Flags().StringArrayVar(&roots, "root", nil, "a YAML file holding a root Application or ApplicationSet applied outside the repository (repeatable)")
	return cmd
}

// buildOptions are the kustomize.buildOptions the flags add to argocd-cm's.
func buildOptions(enableHelm bool) string {
	if enableHelm {
		return "--enable-helm"
	}
	return ""
}

func writeValidateResult(cmd *cobra.Command, res *validate.Result, format output.Format) error {
	out := cmd.OutOrStdout()
	switch format {
	case output.JSON:
		return validate.WriteJSON(out, res)
	case output.SARIF:
		return validate.WriteSARIF(out, res)
	}
	if os.Getenv("GITHUB_ACTIONS") == "true" {
		if err := validate.WriteGitHub(out, res); err != nil {
			return err
		}
	}
	color := false
	if f, ok := out.(*os.File); ok {
		color = term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == ""
	}
	return validate.WriteText(out, res, color)
}

// loadForValidate finds the repository root for path and loads path in it.
func loadForValidate(path string) (*repo.Repo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("validate %s: %w", path, err)
	}
	start := abs
	if !st.IsDir() {
		start = filepath.Dir(abs)
	}
	return repo.LoadPaths(validateRoot(start), abs)
}
