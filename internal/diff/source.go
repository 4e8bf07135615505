package diff

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/apptree"
	"github.com/tug-gitops/tug/internal/repo"
)

// sourceRender is what one Application's sources produce, and which
// repository files they read (for "affected by a change outside its path").
type sourceRender struct {
	objects []*unstructured.Unstructured
	// dirs, helmDirs and files are repo-relative slash paths: source
	// directories (every file under them is an input), chart directories
	// (their templates and values.yaml are), and files read elsewhere
	// (value files, a kustomization's bases).
	dirs, helmDirs, files []string
	// notes say what was not rendered (external sources) and why.
	notes []string
	// reusable: what the render read is all in dirs, helmDirs and files.
	reusable bool
}

// renderApp renders every source of app the way tug validate does
// (apptree, Argo CD's repo-server rules: Helm with value files relative
// to the chart or a $ref source, Kustomize with argocd-cm's build options
// and the Application's edits, or a directory). Sources outside the
// repository are noted, not fetched: tug runs offline. The error is every
// reason the Application could not be rendered.
func renderApp(ctx context.Context, r *repo.Repo, app *repo.Application) (*sourceRender, error) {
	sources, problems := apptree.RenderSources(ctx, r, app)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := &sourceRender{}
	var failures []string
	for _, p := range problems {
		msg := strings.TrimPrefix(p.Message, "Application "+app.Describe()+": ")
		switch p.Rule {
		case "source.remote", "source.external":
			out.notes = append(out.notes, "not rendered: "+msg)
		default:
			failures = append(failures, msg)
		}
	}
	if len(failures) > 0 {
		return nil, errors.New(strings.Join(failures, "; "))
	}
	out.reusable = len(sources) == 1 && (sources[0].Kind == "directory" || sources[0].Kind == "helm" && localValueFiles(app))
	for _, s := range sources {
		switch s.Kind {
		case "helm":
			out.helmDirs = append(out.helmDirs, s.Dir)
		case "":
			continue
		default:
			out.dirs = append(out.dirs, s.Dir)
		}
		out.files = append(out.files, s.ValueFiles...)
		out.files = append(out.files, s.Files...)
		out.objects = append(out.objects, s.Objects...)
	}
	return out, nil
}

// localValueFiles: every value file lies inside the chart (no $ref, no
// "..", no URL), so a changed value file is a changed file under the chart.
func localValueFiles(app *repo.Application) bool {
	h := app.Spec.GetSource().Helm
	if h == nil {
		return true
	}
	for _, vf := range h.ValueFiles {
		if !filepath.IsLocal(filepath.FromSlash(vf)) || strings.HasPrefix(vf, "$") || strings.Contains(vf, "://") {
			return false
		}
	}
	return true
}
