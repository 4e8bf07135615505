package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/tug-gitops/tug/internal/config"
	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/forge/connect"
	"github.com/tug-gitops/tug/internal/kube"
	"github.com/tug-gitops/tug/internal/output"
)

// bindOutputFlag registers -o/--output on cmd: *f is set to allowed[0] (the
// default) and accepts only the allowed formats; any other value is a flag
// error, so the command exits 2. Shell completion offers the formats.
func bindOutputFlag(cmd *cobra.Command, f *output.Format, allowed ...output.Format) {
	v := output.NewValue(f, allowed...)
	cmd.Flags().VarP(v, "output", "o", v.Usage())
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, a := range v.Allowed() {
			out = append(out, cobra.CompletionWithDesc(string(a), a.Description()))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
}

// kubeFlags are the cluster flags of status, wait, verify and bootstrap.
type kubeFlags struct {
	kubeconfig, context string
}

func (f *kubeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, then ~/.kube/config)")
	cmd.Flags().StringVar(&f.context, "context", "", "kubeconfig context (default the current context)")
}

func (f *kubeFlags) config() (*rest.Config, error) {
	return kube.RESTConfig(f.kubeconfig, f.context)
}

func (f *kubeFlags) dynamic() (dynamic.Interface, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	return dynamic.NewForConfig(cfg)
}

// repoRoot is where every command that needs the GitOps repository finds
// it: flagValue, or the working directory, or the nearest folder above
// either that holds tug.yaml.
func repoRoot(flagValue string) (string, error) {
	start := flagValue
	if start == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		start = wd
	}
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", err
	}
	if root, ok := findUp(dir, config.FileName); ok {
		return root, nil
	}
	return "", usageError{fmt.Errorf("no %s in %s or above: run inside a clone of the GitOps repository or pass --repo", config.FileName, dir)}
}

// validateRoot is the root validate resolves paths against: the nearest
// folder at or above dir holding tug.yaml or .git (validate also checks
// repositories that have no tug.yaml), else dir itself.
func validateRoot(dir string) string {
	if root, ok := findUp(dir, config.FileName, ".git"); ok {
		return root
	}
	return dir
}

// findUp returns the nearest folder at or above dir that holds one of the
// markers.
func findUp(dir string, markers ...string) (string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		for _, m := range markers {
			if _, err := os.Stat(filepath.Join(d, m)); err == nil {
				return d, true
			}
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

// openForge connects to the forge that t names (else the one the
// repository's URL names); a target that cannot be resolved is misuse.
func openForge(ctx context.Context, repoDir string, t connect.Target) (forge.Forge, error) {
	f, err := connect.Open(ctx, repoDir, t)
	if errors.As(err, new(connect.TargetError)) {
		return nil, usageError{err}
	}
	return f, err
}
