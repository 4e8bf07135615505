package promote

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/tug-gitops/tug/internal/render"
)

// renderEnv renders the --to Application's chart as Argo CD would (release
// name, namespace, value files in order) and returns the objects as one
// stable YAML text: sorted by kind, namespace and name, keys sorted.
func renderEnv(ctx context.Context, root string, e envApp) (string, error) {
	src := e.App.Spec.Source
	release := src.Helm.ReleaseName
	if release == "" {
		release = e.App.Name
	}
	chartDir := filepath.Join(root, filepath.FromSlash(e.ChartPath))
	files := make([]string, 0, len(src.Helm.ValueFiles))
	for _, vf := range src.Helm.ValueFiles {
		files = append(files, filepath.Join(chartDir, filepath.FromSlash(vf)))
	}
	var params []render.HelmParameter
	for _, p := range src.Helm.Parameters {
		params = append(params, render.HelmParameter{Name: p.Name, Value: p.Value, ForceString: p.ForceString})
	}
	var inline []byte
	if v := src.Helm.ValuesYAML(); len(v) > 0 {
		inline = v
	}
	objs, err := render.Helm(ctx, chartDir, render.HelmOptions{
		ReleaseName: release, Namespace: e.App.Spec.Destination.Namespace,
		ValueFiles: files, Values: inline, Parameters: params,
	})
	if err != nil {
		return "", err
	}
	return manifestText(objs)
}

func manifestText(objs []*unstructured.Unstructured) (string, error) {
	sort.SliceStable(objs, func(i, j int) bool { return objKey(objs[i]) < objKey(objs[j]) })
	var b strings.Builder
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "---\n# %s\n%s", objKey(o), data)
	}
	return b.String(), nil
}

func objKey(o *unstructured.Unstructured) string {
	return fmt.Sprintf("%s/%s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
}

// unifiedDiff is `diff -u` of two texts ("" when equal).
func unifiedDiff(a, b, nameA, nameB string) string {
	if a == b {
		return ""
	}
	out, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: nameA, ToFile: nameB, Context: 3,
	})
	if err != nil {
		return fmt.Sprintf("(diff failed: %v)", err)
	}
	return out
}
