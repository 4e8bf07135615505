package diff

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/tug-gitops/tug/internal/repo"
)

// Snapshot is every Application of one revision, rendered.
type Snapshot struct {
	Apps map[string]*RenderedApp
	// projects is each AppProject's spec as YAML, and where it is declared.
	projects     map[string]string
	projectFiles map[string]string
	// Problems are the repository's load problems (unparsable files…),
	// shown so a diff that looks empty because a file broke says so.
	Problems []string
}

// RenderedApp is one Application and the objects its sources produce,
// normalized as Argo CD compares them (Secret values not yet masked: that
// needs both sides).
type RenderedApp struct {
	Name    string
	Env     string
	Project string
	// DeclaredIn is the file of the Application (or its ApplicationSet).
	DeclaredIn string
	Objects    map[ResourceKey]*unstructured.Unstructured
	// Err is why the Application could not be rendered ("" when it could).
	Err      string
	Notes    []string
	dirs     []string
	helmDirs []string
	files    []string
}

// Render loads the repository at root and renders every Application in it
// (declared and ApplicationSet-generated), parallel up to parallel (0:
// GOMAXPROCS). A render failure is kept on the Application, not returned:
// a pull request that breaks one environment must show that.
func Render(ctx context.Context, root string, parallel int) (*Snapshot, error) {
	r, err := repo.Load(root)
	if err != nil {
		return nil, err
	}
	return renderRepo(ctx, r, parallel)
}

func renderRepo(ctx context.Context, r *repo.Repo, parallel int) (*Snapshot, error) {
	s := &Snapshot{Apps: map[string]*RenderedApp{}, projects: map[string]string{}, projectFiles: map[string]string{}}
	for _, p := range r.Problems {
		s.Problems = append(s.Problems, fmt.Sprintf("%s: %s [%s]", p.Pos, p.Message, p.Rule))
	}
	for _, p := range r.Projects {
		data, err := yaml.Marshal(p.Spec)
		if err != nil {
			return nil, err
		}
		s.projects[p.Name], s.projectFiles[p.Name] = string(data), p.Pos.File
	}
	apps := make([]*RenderedApp, len(r.Applications))
	g, gctx := errgroup.WithContext(ctx)
	if parallel <= 0 {
		parallel = runtime.GOMAXPROCS(0)
	}
	g.SetLimit(parallel)
	for i, a := range r.Applications {
		g.Go(func() error {
			apps[i] = renderOne(gctx, r, a)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, a := range apps {
		name := a.Name
		for n := 2; s.Apps[name] != nil; n++ { // a duplicate name (validate reports it): keep both
			name = fmt.Sprintf("%s (%d)", a.Name, n)
		}
		a.Name = name
		s.Apps[name] = a
	}
	return s, nil
}

func renderOne(ctx context.Context, r *repo.Repo, a *repo.Application) *RenderedApp {
	ra := &RenderedApp{
		Name: a.Name, Env: environment(r, a), Project: a.Spec.Project, DeclaredIn: a.Pos.File,
		Objects: map[ResourceKey]*unstructured.Unstructured{},
	}
	if ra.Project == "" {
		ra.Project = "default"
	}
	src, err := renderApp(ctx, r, a)
	if err != nil {
		ra.Err = err.Error()
		return ra
	}
	ra.dirs, ra.helmDirs, ra.files, ra.Notes = src.dirs, src.helmDirs, src.files, src.notes
	n, err := newNormalizer(a.Spec.IgnoreDifferences)
	if err != nil {
		ra.Err = err.Error()
		return ra
	}
	for _, o := range src.objects {
		if o.GetKind() == "" || o.GetName() == "" && o.GetGenerateName() == "" {
			continue // not something Argo CD would apply
		}
		no, err := n.normalize(o)
		if err != nil {
			ra.Err = err.Error()
			return ra
		}
		k := keyOf(no)
		if ra.Objects[k] != nil {
			ra.Notes = append(ra.Notes, "rendered twice (the last one is compared): "+k.String())
		}
		ra.Objects[k] = no
	}
	return ra
}

// environment is the tug.yaml environment an Application deploys to: the
// one its name or destination namespace ends with ("backend-prod",
// "shop-prod"), else "".
func environment(r *repo.Repo, a *repo.Application) string {
	for _, e := range r.Config.Environments {
		if strings.HasSuffix(a.Name, "-"+e) || strings.HasSuffix(a.Spec.Destination.Namespace, "-"+e) || a.Name == e {
			return e
		}
	}
	return ""
}

// reads reports whether the app's render read the repo-relative file.
func (a *RenderedApp) reads(file string) bool {
	for _, f := range a.files {
		if f == file {
			return true
		}
	}
	for _, d := range a.dirs {
		if d == "." || strings.HasPrefix(file, d+"/") {
			return true
		}
	}
	for _, d := range a.helmDirs {
		if rest, ok := strings.CutPrefix(file, d+"/"); ok || d == "." {
			if d == "." {
				rest = file
			}
			if strings.Contains(rest, "/") || chartFiles[rest] {
				return true // templates/, charts/, crds/…, or what Helm always loads
			}
		}
	}
	return false
}

// chartFiles are the top-level files of a chart Helm reads for every
// release; other top-level files (values-prod.yaml…) are read only when an
// Application names them, which its files list records.
var chartFiles = map[string]bool{
	"Chart.yaml": true, "Chart.lock": true, "values.yaml": true, "values.schema.json": true,
	"requirements.yaml": true, "requirements.lock": true, ".helmignore": true,
}

// RenderApplication renders one Application of a loaded repository the way
// Render does (promotion uses it to render an environment before and after
// its edit).
func RenderApplication(ctx context.Context, r *repo.Repo, a *repo.Application) *RenderedApp {
	return renderOne(ctx, r, a)
}
