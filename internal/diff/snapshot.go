package diff

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
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
	repo     *repo.Repo
	// reused counts the renders taken over from the other revision.
	reused int
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
	// app is the Application rendered; from is the other revision's
	// render this one was taken from (nil when rendered).
	app  *repo.Application
	from *RenderedApp
	// reusable: every input is under dirs and helmDirs or in files (one
	// Helm or directory source, value files inside the chart).
	reusable bool
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
	return renderRepo(ctx, r, parallel, nil)
}

// renderRepo renders every Application of r, taking from same (when not
// nil) the render of each Application whose inputs did not change.
func renderRepo(ctx context.Context, r *repo.Repo, parallel int, same *reuse) (*Snapshot, error) {
	s := &Snapshot{Apps: map[string]*RenderedApp{}, projects: map[string]string{}, projectFiles: map[string]string{}, repo: r}
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
		if apps[i] = same.lookup(r, a); apps[i] != nil {
			s.reused++
			continue
		}
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
		Objects: map[ResourceKey]*unstructured.Unstructured{}, app: a,
	}
	if ra.Project == "" {
		ra.Project = "default"
	}
	src, err := renderApp(ctx, r, a)
	if err != nil {
		ra.Err = err.Error()
		return ra
	}
	ra.dirs, ra.helmDirs, ra.files, ra.Notes, ra.reusable = src.dirs, src.helmDirs, src.files, src.notes, src.reusable
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

// reuse lets a revision take an Application's render from the base
// revision when nothing it reads differs: the same spec, the same settings
// (tug.yaml, argocd-cm, the repository URL), and no changed file under its
// source or chart folder or among the files it read. Helm charts shared by
// many Applications then render once per Application, not twice, when a
// change does not touch them.
type reuse struct {
	base    *Snapshot
	changed []string
}

func (u *reuse) lookup(r *repo.Repo, a *repo.Application) *RenderedApp {
	if u == nil || a.Name == "" {
		return nil
	}
	br := u.base.repo
	if br.URL != r.URL || !reflect.DeepEqual(br.Config, r.Config) || !reflect.DeepEqual(br.ArgoCDConfig, r.ArgoCDConfig) {
		return nil
	}
	b := u.base.Apps[a.Name]
	if b == nil || !b.reusable || b.Err != "" || b.app == nil || b.app.Namespace != a.Namespace || !reflect.DeepEqual(b.app.Spec, a.Spec) {
		return nil
	}
	for _, f := range u.changed {
		if slices.Contains(b.files, f) || under(f, b.dirs) || under(f, b.helmDirs) {
			return nil
		}
	}
	c := *b
	c.Name, c.Env, c.DeclaredIn, c.app, c.from = a.Name, environment(r, a), a.Pos.File, a, b
	return &c
}
