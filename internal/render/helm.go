package render

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// HelmParameter is one --set (or --set-string when ForceString) override.
type HelmParameter struct {
	Name        string
	Value       string
	ForceString bool
}

// HelmOptions are the inputs Argo CD's repo-server passes to `helm template`.
type HelmOptions struct {
	ReleaseName string
	Namespace   string
	// ValueFiles are paths of values files, applied in order.
	ValueFiles []string
	// Values is inline YAML (spec.source.helm.values or valuesObject), applied
	// after the value files, as Argo CD does.
	Values []byte
	// Parameters are applied last.
	Parameters []HelmParameter
	// KubeVersion, e.g. "1.34.0"; empty means Helm's default.
	KubeVersion string
	// APIVersions adds to the capabilities templates see (.Capabilities.APIVersions).
	APIVersions []string
	// Dependencies are directories of charts attached as subcharts before
	// rendering, in memory (the chart's own charts/ is not written): the
	// missing dependencies `helm dependency build` would have downloaded
	// or copied (file://).
	// Helm's own processing then applies their condition, tags and alias.
	Dependencies []string
}

// Helm renders the chart in chartDir the way `helm template --include-crds`
// does (hooks included), with the Helm SDK and no cluster.
func Helm(ctx context.Context, chartDir string, opts HelmOptions) ([]*unstructured.Unstructured, error) {
	manifest, err := helmManifest(ctx, chartDir, opts)
	if err != nil {
		return nil, err
	}
	objs, err := DecodeManifests([]byte(manifest))
	if err != nil {
		return nil, fmt.Errorf("helm template %s produced invalid YAML: %w", chartDir, err)
	}
	return objs, nil
}

// helmManifest is `helm template`'s output: manifests, then hooks.
func helmManifest(ctx context.Context, chartDir string, opts HelmOptions) (string, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return "", fmt.Errorf("load chart %s: %w", chartDir, err)
	}
	for _, d := range opts.Dependencies {
		sub, err := loader.Load(d)
		if err != nil {
			return "", fmt.Errorf("load chart dependency %s: %w", d, err)
		}
		chrt.AddDependency(sub)
	}
	vals, err := helmValues(opts)
	if err != nil {
		return "", err
	}
	inst, err := newClientOnlyInstall(opts)
	if err != nil {
		return "", err
	}
	rel, err := inst.RunWithContext(ctx, chrt, vals)
	if err != nil {
		return "", fmt.Errorf("helm template %s: %w", chartDir, err)
	}
	var all strings.Builder
	all.WriteString(rel.Manifest)
	for _, h := range rel.Hooks {
		all.WriteString("\n---\n# Source: ")
		all.WriteString(h.Path)
		all.WriteString("\n")
		all.WriteString(h.Manifest)
	}
	return all.String(), nil
}

func newClientOnlyInstall(opts HelmOptions) (*action.Install, error) {
	caps := chartutil.DefaultCapabilities.Copy()
	if opts.KubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(opts.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("kube version %q: %w", opts.KubeVersion, err)
		}
		caps.KubeVersion = *kv
	}
	caps.APIVersions = append(caps.APIVersions, opts.APIVersions...)
	cfg := &action.Configuration{
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Releases:     storage.Init(driver.NewMemory()),
		Capabilities: caps,
		Log:          func(string, ...any) {},
	}
	inst := action.NewInstall(cfg)
	inst.DryRun = true
	inst.DryRunOption = "client"
	inst.ClientOnly = true
	inst.Replace = true
	inst.IncludeCRDs = true
	inst.ReleaseName = opts.ReleaseName
	inst.Namespace = opts.Namespace
	inst.KubeVersion = &caps.KubeVersion
	inst.APIVersions = caps.APIVersions
	return inst, nil
}

// helmValues merges value files, inline values and parameters in Argo CD's order.
func helmValues(opts HelmOptions) (map[string]any, error) {
	base := map[string]any{}
	for _, f := range opts.ValueFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("values file: %w", err)
		}
		cur := map[string]any{}
		if err := yaml.Unmarshal(data, &cur); err != nil {
			return nil, fmt.Errorf("values file %s: %w", f, err)
		}
		base = mergeMaps(base, cur)
	}
	if len(opts.Values) > 0 {
		cur := map[string]any{}
		if err := yaml.Unmarshal(opts.Values, &cur); err != nil {
			return nil, fmt.Errorf("inline helm values: %w", err)
		}
		base = mergeMaps(base, cur)
	}
	for _, p := range opts.Parameters {
		set := strvals.ParseInto
		if p.ForceString {
			set = strvals.ParseIntoString
		}
		if err := set(p.Name+"="+p.Value, base); err != nil {
			return nil, fmt.Errorf("helm parameter %s: %w", p.Name, err)
		}
	}
	return base, nil
}

// mergeMaps is Helm's own rule for -f files: later maps win, nested maps merge.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]any); ok {
			if bv, ok := out[k]; ok {
				if bvm, ok := bv.(map[string]any); ok {
					out[k] = mergeMaps(bvm, vm)
					continue
				}
			}
		}
		out[k] = v
	}
	return out
}
