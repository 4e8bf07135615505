package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/kube"
)

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

// checkOutput rejects an -o value outside allowed.
func checkOutput(output string, allowed ...string) error {
	for _, a := range allowed {
		if output == a {
			return nil
		}
	}
	return usageError{fmt.Errorf("unknown output format %q: use %v", output, allowed)}
}

// writeData prints v as JSON or YAML.
func writeData(w io.Writer, format string, v any) error {
	if format == "yaml" {
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newStatusCmd() *cobra.Command {
	var (
		kf        kubeFlags
		output    string
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
			if err := checkOutput(output, "table", "json", "yaml"); err != nil {
				return err
			}
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
			if output != "table" {
				return writeData(cmd.OutOrStdout(), output, trees)
			}
			if len(trees) == 0 {
				fmt.Fprintf(os.Stderr, "No Applications in namespace %s.\n", namespace)
				return nil
			}
			return appstatus.WriteTable(cmd.OutOrStdout(), trees)
		},
	}
	kf.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
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
