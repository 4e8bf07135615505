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
		format    output.Format
		strict    bool
		listRules bool
	)
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check a GitOps repository offline before merge",
		Long: `Validate finds every Argo CD Application, AppProject and ApplicationSet
(list generators expanded) in the YAML files under PATH (default ".") and
checks what Argo CD would only report after merge: strict specs (Argo CD's own
types), destinations (exact server match, as Argo CD does), projects (Argo CD's
own permission checks), sources rendered with the Helm SDK / kustomize API,
rendered manifests against the Kubernetes 1.34 schema (plus CRDs in the repo),
and conflicts between Applications. No cluster and no network are used.

The repository root is the nearest directory at or above PATH holding tug.yaml
or .git; tug.yaml declares repoURL and the clusters Argo CD knows.

Exit status: 0 clean (info and, without --strict, warnings allowed),
1 errors found, 2 misuse or internal failure.`,
		Example: `  # Check the repository you are in
  tug validate

  # Treat warnings as errors, as a required PR check would
  tug validate --strict .

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
				one, err := validate.Run(cmd.Context(), r, validate.Options{})
				if err != nil {
					return usageError{fmt.Errorf("internal failure: %w", err)} // exit 2, as the issue defines
				}
				res.Findings = append(res.Findings, one.Findings...)
				res.Apps += one.Apps
				res.Projects += one.Projects
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
	return cmd
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
