package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var (
	docSepRE  = regexp.MustCompile(`(?m)^---[ \t]*$`)
	sourcesRE = regexp.MustCompile(`(?m)^# Source: (.+)$`)
)

// HelmTemplated is one object `helm template` produced, with the template
// file that produced it (an absolute path; "" when Helm did not say).
type HelmTemplated struct {
	Object   *unstructured.Unstructured
	Template string
}

// HelmWithSources renders like Helm and keeps, for every object, the
// template file it came from (Helm's "# Source:" comment), so findings on
// rendered objects can point at the template.
func HelmWithSources(ctx context.Context, chartDir string, opts HelmOptions) ([]HelmTemplated, error) {
	manifest, err := helmManifest(ctx, chartDir, opts)
	if err != nil {
		return nil, err
	}
	// Templates of attached dependencies are in their own directories.
	attached := map[string]string{}
	for _, d := range opts.Dependencies {
		name := filepath.Base(d)
		if meta, err := chartutil.LoadChartfile(filepath.Join(d, "Chart.yaml")); err == nil {
			name = meta.Name
		}
		attached["charts/"+name+"/"] = d
	}
	var out []HelmTemplated
	for _, doc := range docSepRE.Split(manifest, -1) {
		tmpl := ""
		if m := sourcesRE.FindStringSubmatch(doc); m != nil {
			// "<chart>/templates/x.yaml", or "<chart>/charts/<sub>/templates/x.yaml"
			if _, rest, ok := strings.Cut(strings.TrimSpace(m[1]), "/"); ok {
				tmpl = filepath.Join(chartDir, filepath.FromSlash(rest))
				for prefix, dir := range attached {
					if sub, ok := strings.CutPrefix(rest, prefix); ok {
						tmpl = filepath.Join(dir, filepath.FromSlash(sub))
					}
				}
				if strings.HasPrefix(rest, "charts/") && !fileExists(tmpl) {
					tmpl = "" // an aliased attached dependency: Helm names it by its alias
				}
			}
		}
		objs, err := DecodeManifests([]byte(doc))
		if err != nil {
			where := chartDir
			if tmpl != "" {
				where = tmpl
			}
			return nil, fmt.Errorf("helm template %s produced invalid YAML: %w", where, err)
		}
		for _, o := range objs {
			out = append(out, HelmTemplated{Object: o, Template: tmpl})
		}
	}
	return out, nil
}

// MissingDependency is a dependency a chart declares but does not carry in
// its charts/ directory (helm dependency build was not run).
type MissingDependency struct {
	Name, Version, Repository string
	// Locked is the version Chart.lock pins ("" without a lock entry):
	// what helm dependency build downloads.
	Locked string
}

// Wanted is the version (or constraint) helm dependency build resolves:
// Chart.lock's when it has one, else Chart.yaml's.
func (d MissingDependency) Wanted() string {
	if d.Locked != "" {
		return d.Locked
	}
	return d.Version
}

// MissingDependencies lists a local chart's declared dependencies that are
// not vendored; Argo CD's repo-server would download them, offline they are
// absent and the chart renders without them.
func MissingDependencies(chartDir string) ([]MissingDependency, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	return missingDeps(chrt), nil
}

func missingDeps(chrt *chart.Chart) []MissingDependency {
	have := map[string]bool{}
	for _, d := range chrt.Dependencies() {
		have[d.Name()] = true
	}
	var out []MissingDependency
	for _, d := range chrt.Metadata.Dependencies {
		if !have[d.Name] {
			m := MissingDependency{Name: d.Name, Version: d.Version, Repository: d.Repository}
			if chrt.Lock != nil {
				for _, l := range chrt.Lock.Dependencies {
					if l.Name == d.Name && l.Repository == d.Repository {
						m.Locked = l.Version
					}
				}
			}
			out = append(out, m)
		}
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
