package diff

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argogit "github.com/argoproj/argo-cd/v3/util/git"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/render"
	"github.com/tug-gitops/tug/internal/repo"
)

// sourceRender is what one Application's sources produce, and which
// repository files they read (for "affected by a change outside its path").
type sourceRender struct {
	objects []*unstructured.Unstructured
	// dirs, helmDirs and files are repo-relative slash paths: source
	// directories (every file under them is an input), chart directories
	// (their templates and values.yaml are), and value files.
	dirs, helmDirs, files []string
	// notes say what was not rendered (external sources) and why.
	notes []string
}

// renderApp renders every source of app from the repository at r.Root the
// way Argo CD's repo-server would: Helm (value files relative to the chart,
// $ref/… relative to a referenced source), Kustomize, or a directory.
// Sources outside the repository are noted, not fetched: tug runs offline.
func renderApp(ctx context.Context, r *repo.Repo, app *repo.Application) (*sourceRender, error) {
	out := &sourceRender{}
	for _, src := range app.Spec.GetSources() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !isLocal(r, src) {
			what := src.RepoURL
			if src.Chart != "" {
				what = src.Chart + " " + src.TargetRevision + " from " + src.RepoURL
			}
			out.notes = append(out.notes, "not rendered: "+what+" is outside this repository")
			continue
		}
		if src.Ref != "" && src.Path == "" {
			continue // a $ref values source, read through the others
		}
		rel := path.Clean(strings.TrimPrefix(filepath.ToSlash(src.Path), "/"))
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("path %q leaves the repository", src.Path)
		}
		dir := filepath.Join(r.Root, filepath.FromSlash(rel))
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("path %q does not exist in the repository", src.Path)
		}
		objs, err := renderSource(ctx, r, app, src, dir, rel, out)
		if err != nil {
			return nil, err
		}
		out.objects = append(out.objects, objs...)
	}
	return out, nil
}

func isLocal(r *repo.Repo, src v1alpha1.ApplicationSource) bool {
	if src.Chart != "" {
		return false // a chart from a Helm repository or OCI registry
	}
	if r.Config.RepoURL == "" {
		return true
	}
	return argogit.SameURL(src.RepoURL, r.Config.RepoURL)
}

func renderSource(ctx context.Context, r *repo.Repo, app *repo.Application, src v1alpha1.ApplicationSource, dir, rel string, out *sourceRender) ([]*unstructured.Unstructured, error) {
	if exists(filepath.Join(dir, "Chart.yaml")) || src.Helm != nil {
		out.helmDirs = append(out.helmDirs, rel)
		return renderHelm(ctx, r, app, src, dir, out)
	}
	out.dirs = append(out.dirs, rel)
	switch {
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

func renderHelm(ctx context.Context, r *repo.Repo, app *repo.Application, src v1alpha1.ApplicationSource, dir string, out *sourceRender) ([]*unstructured.Unstructured, error) {
	opts := render.HelmOptions{ReleaseName: app.Name, Namespace: app.Spec.Destination.Namespace}
	if h := src.Helm; h != nil {
		if h.ReleaseName != "" {
			opts.ReleaseName = h.ReleaseName
		}
		if h.Namespace != "" {
			opts.Namespace = h.Namespace
		}
		opts.KubeVersion, opts.APIVersions = h.KubeVersion, h.APIVersions
		for _, vf := range h.ValueFiles {
			if strings.Contains(vf, "://") {
				out.notes = append(out.notes, "not read: remote value file "+vf)
				continue
			}
			p, ok := valueFilePath(r, app, dir, vf)
			if !ok {
				out.notes = append(out.notes, "not read: value file "+vf+" is outside this repository")
				continue
			}
			out.files = append(out.files, relSlash(r.Root, p))
			if !exists(p) {
				if h.IgnoreMissingValueFiles {
					continue
				}
				return nil, fmt.Errorf("value file %q not found (looked at %s)", vf, relSlash(r.Root, p))
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
func valueFilePath(r *repo.Repo, app *repo.Application, chartDir, vf string) (string, bool) {
	if !strings.HasPrefix(vf, "$") {
		return filepath.Join(chartDir, filepath.FromSlash(vf)), true
	}
	ref, rest, _ := strings.Cut(strings.TrimPrefix(vf, "$"), "/")
	for _, s := range app.Spec.GetSources() {
		if s.Ref == ref {
			if !isLocal(r, s) {
				return "", false
			}
			return filepath.Join(r.Root, filepath.FromSlash(s.Path), filepath.FromSlash(rest)), true
		}
	}
	return filepath.Join(chartDir, filepath.FromSlash(vf)), true
}

func relSlash(root, p string) string {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(rel)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
