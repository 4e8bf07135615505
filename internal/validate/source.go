package validate

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/git"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/render"
	"github.com/tug-gitops/tug/internal/repo"
)

// isLocal reports whether a source's repoURL is this repository.
func (v *validator) isLocal(src v1alpha1.ApplicationSource) bool {
	if src.Chart != "" {
		return false // a chart from a Helm repository or OCI registry
	}
	if v.r.Config.RepoURL == "" {
		return true // no repoURL declared: assume sources point here
	}
	return git.SameURL(src.RepoURL, v.r.Config.RepoURL)
}

// renderSource checks and renders one source. It returns the objects and the
// repo-relative directory it read ("" when nothing was read).
func (v *validator) renderSource(ctx context.Context, app *repo.Application, i int, src v1alpha1.ApplicationSource) ([]*unstructured.Unstructured, string) {
	sp := sourcePath(app, i)
	if src.RepoURL == "" {
		return nil, "" // parse.schema reported it
	}
	if !v.isLocal(src) {
		what := src.RepoURL
		if src.Chart != "" {
			what = src.Chart + " from " + src.RepoURL
		}
		v.add(newFinding("source.external", app.FieldPos(sp+".repoURL"), "set repoURL in tug.yaml if this is meant to be the repository itself",
			"Application %q: %s is outside this repository and is not rendered", app.Name, what))
		return nil, ""
	}
	if src.Ref != "" && src.Path == "" {
		return nil, "" // a $ref values source, used by the others
	}
	rel := path.Clean(strings.TrimPrefix(filepath.ToSlash(src.Path), "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		v.add(newFinding("source.path-missing", app.FieldPos(sp+".path"), "paths are relative to the repository root",
			"Application %q: path %q leaves the repository", app.Name, src.Path))
		return nil, ""
	}
	dir := filepath.Join(v.r.Root, filepath.FromSlash(rel))
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		v.add(newFinding("source.path-missing", app.FieldPos(sp+".path"), v.pathHint(rel),
			"Application %q: path %q does not exist in the repository", app.Name, src.Path))
		return nil, ""
	}
	objs, err := v.render(ctx, app, i, src, dir)
	if err != nil {
		v.add(newFinding("source.render-failed", app.FieldPos(sp), "run the same render locally to see the full error",
			"Application %q: %v", app.Name, err))
		return nil, rel
	}
	return objs, rel
}

func (v *validator) render(ctx context.Context, app *repo.Application, i int, src v1alpha1.ApplicationSource, dir string) ([]*unstructured.Unstructured, error) {
	switch {
	case exists(filepath.Join(dir, "Chart.yaml")) || src.Helm != nil:
		return v.renderHelm(ctx, app, i, src, dir)
	case exists(filepath.Join(dir, "kustomization.yaml")) || exists(filepath.Join(dir, "kustomization.yml")) || exists(filepath.Join(dir, "Kustomization")) || src.Kustomize != nil:
		return render.Kustomize(dir)
	default:
		opts := render.DirectoryOptions{}
		if d := src.Directory; d != nil {
			opts.Recurse, opts.Include, opts.Exclude = d.Recurse, d.Include, d.Exclude
		}
		return render.Directory(dir, opts)
	}
}

// renderHelm resolves value files like Argo CD (relative to the chart, or
// $ref/… relative to a referenced source) and renders with the Helm SDK.
func (v *validator) renderHelm(ctx context.Context, app *repo.Application, i int, src v1alpha1.ApplicationSource, dir string) ([]*unstructured.Unstructured, error) {
	opts := render.HelmOptions{ReleaseName: app.Name, Namespace: app.Spec.Destination.Namespace}
	sp := sourcePath(app, i)
	if h := src.Helm; h != nil {
		if h.ReleaseName != "" {
			opts.ReleaseName = h.ReleaseName
		}
		if h.Namespace != "" {
			opts.Namespace = h.Namespace
		}
		if h.KubeVersion != "" {
			opts.KubeVersion = h.KubeVersion
		}
		opts.APIVersions = h.APIVersions
		for j, vf := range h.ValueFiles {
			if strings.Contains(vf, "://") {
				continue // remote value file: not fetched offline
			}
			p, ok := v.valueFilePath(app, dir, vf)
			if !ok {
				continue // $ref to an external source
			}
			if !exists(p) {
				if !h.IgnoreMissingValueFiles {
					v.add(newFinding("source.values-missing", app.FieldPos(fmt.Sprintf("%s.helm.valueFiles[%d]", sp, j)), v.valuesHint(dir, vf),
						"Application %q: value file %q not found (looked at %s)", app.Name, vf, v.r.Rel(p)))
					return nil, nil
				}
				continue
			}
			opts.ValueFiles = append(opts.ValueFiles, p)
		}
		opts.Values = h.ValuesYAML()
		for _, p := range h.Parameters {
			opts.Parameters = append(opts.Parameters, render.HelmParameter{Name: p.Name, Value: p.Value, ForceString: p.ForceString})
		}
	}
	return render.Helm(ctx, dir, opts)
}

// valueFilePath resolves a value file; ok is false for an external $ref.
func (v *validator) valueFilePath(app *repo.Application, chartDir, vf string) (string, bool) {
	if !strings.HasPrefix(vf, "$") {
		return filepath.Join(chartDir, filepath.FromSlash(vf)), true
	}
	ref, rest, _ := strings.Cut(strings.TrimPrefix(vf, "$"), "/")
	for _, s := range app.Spec.GetSources() {
		if s.Ref == ref {
			if !v.isLocal(s) {
				return "", false
			}
			return filepath.Join(v.r.Root, filepath.FromSlash(s.Path), filepath.FromSlash(rest)), true
		}
	}
	return filepath.Join(chartDir, filepath.FromSlash(vf)), true
}

func (v *validator) pathHint(rel string) string {
	if s := closestEntry(filepath.Join(v.r.Root, filepath.FromSlash(path.Dir(rel))), path.Base(rel), true); s != "" {
		return fmt.Sprintf("did you mean %q?", path.Join(path.Dir(rel), s))
	}
	return "paths are relative to the repository root, without a leading ./ or /"
}

func (v *validator) valuesHint(chartDir, vf string) string {
	if s := closestEntry(filepath.Join(chartDir, filepath.Dir(filepath.FromSlash(vf))), path.Base(vf), false); s != "" {
		return fmt.Sprintf("did you mean %q?", path.Join(path.Dir(vf), s))
	}
	return "value files are relative to the chart directory (spec.source.path)"
}

// closestEntry finds a directory entry whose name is within edit distance 3.
func closestEntry(dir, name string, wantDir bool) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	best, bestDist := "", 4
	for _, e := range entries {
		if e.IsDir() != wantDir {
			continue
		}
		if d := repo.EditDistance(name, e.Name()); d < bestDist {
			best, bestDist = e.Name(), d
		}
	}
	return best
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
