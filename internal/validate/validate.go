package validate

import (
	"context"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/config"
	"github.com/tug-gitops/tug/internal/repo"
)

// Options tune a validation run.
type Options struct {
	// Parallel is how many Applications render at once; 0 means GOMAXPROCS.
	Parallel int
}

// Result is the outcome of a run.
type Result struct {
	Findings []Finding `json:"findings"`
	Apps     int       `json:"applications"`
	Projects int       `json:"projects"`
}

// Count returns how many findings have at least severity s.
func (r *Result) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity >= s {
			n++
		}
	}
	return n
}

// validator holds what every check needs.
type validator struct {
	r        *repo.Repo
	clusters []config.Cluster
	schemas  *schemaSet

	mu       sync.Mutex
	findings []Finding
}

func (v *validator) add(f Finding) {
	v.mu.Lock()
	v.findings = append(v.findings, f)
	v.mu.Unlock()
}

// Run validates a loaded repository.
func Run(ctx context.Context, r *repo.Repo, opts Options) (*Result, error) {
	v := &validator{r: r, clusters: knownClusters(r)}
	for _, p := range r.Problems {
		v.add(newFinding(p.Rule, p.Pos, p.Hint, "%s", p.Message))
	}
	schemas, err := loadSchemas(r)
	if err != nil {
		return nil, err
	}
	v.schemas = schemas

	v.checkDuplicateNames()
	v.checkRetryRefresh()
	rendered := make([]*renderedApp, len(r.Applications))
	g, gctx := errgroup.WithContext(ctx)
	limit := opts.Parallel
	if limit <= 0 {
		limit = runtime.GOMAXPROCS(0)
	}
	g.SetLimit(limit)
	for i, app := range r.Applications {
		g.Go(func() error {
			rendered[i] = v.checkApplication(gctx, app)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	v.checkSharedResources(rendered)
	v.checkReachability(rendered)
	SortFindings(v.findings)
	return &Result{Findings: v.findings, Apps: len(r.Applications), Projects: len(r.Projects)}, nil
}

// renderedApp is an Application with the objects its sources produce.
type renderedApp struct {
	app     *repo.Application
	objects []*unstructured.Unstructured
	// dirs are the repo-relative directories its sources read (for reachability).
	dirs []string
}

func (v *validator) checkApplication(ctx context.Context, app *repo.Application) *renderedApp {
	ra := &renderedApp{app: app}
	cluster := v.checkDestination(app)
	proj := v.checkProject(app, cluster)
	for i, src := range app.Spec.GetSources() {
		if ctx.Err() != nil {
			return ra
		}
		objs, dir := v.renderSource(ctx, app, i, src)
		if dir != "" {
			ra.dirs = append(ra.dirs, dir)
		}
		for _, o := range objs {
			v.checkManifest(app, i, o)
			if proj != nil {
				v.checkResourcePermitted(app, i, proj, cluster, o)
			}
		}
		ra.objects = append(ra.objects, objs...)
	}
	return ra
}

// knownClusters are in-cluster, tug.yaml's clusters and cluster Secrets.
func knownClusters(r *repo.Repo) []config.Cluster {
	out := append([]config.Cluster(nil), r.Config.Clusters...)
	for _, s := range r.ClusterSecrets {
		name, server := secretValue(s.Unstructured, "name"), secretValue(s.Unstructured, "server")
		if server != "" {
			out = append(out, config.Cluster{Name: name, Server: strings.TrimRight(server, "/")})
		}
	}
	return out
}

func secretValue(u *unstructured.Unstructured, key string) string {
	if s, ok, _ := unstructured.NestedString(u.Object, "stringData", key); ok {
		return s
	}
	if s, ok, _ := unstructured.NestedString(u.Object, "data", key); ok {
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			return string(b)
		}
	}
	return ""
}

func sourcePath(app *repo.Application, i int) string {
	if app.Spec.HasMultipleSources() {
		return fmt.Sprintf("spec.sources[%d]", i)
	}
	return "spec.source"
}

// defaultProject is what Argo CD creates when no "default" AppProject exists:
// everything permitted.
func defaultProject() *repo.AppProject {
	p := &repo.AppProject{}
	p.Name = "default"
	p.Spec.SourceRepos = []string{"*"}
	p.Spec.Destinations = []v1alpha1.ApplicationDestination{{Server: "*", Name: "*", Namespace: "*"}}
	p.Spec.ClusterResourceWhitelist = nil
	p.Spec.ClusterResourceWhitelist = append(p.Spec.ClusterResourceWhitelist, groupKindAll())
	return p
}
