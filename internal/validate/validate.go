package validate

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/apptree"
	"github.com/tug-gitops/tug/internal/chartfetch"
	"github.com/tug-gitops/tug/internal/config"
	"github.com/tug-gitops/tug/internal/repo"
)

// Options tune a validation run.
type Options struct {
	// Parallel is how many Applications render at once; 0 means GOMAXPROCS.
	Parallel int
	// Roots are extra files holding root Applications (see apptree.Options).
	Roots []string
	// KustomizeBuildOptions are added to argocd-cm's (see apptree.Options).
	KustomizeBuildOptions string
	// Online fetches Helm-repository and OCI charts into Charts and checks
	// what they render (see apptree.Options); offline is the default.
	Online bool
	Charts *chartfetch.Cache
}

// Result is the outcome of a run.
type Result struct {
	Findings []Finding `json:"findings"`
	Apps     int       `json:"applications"`
	Projects int       `json:"projects"`
	// RepoURL is the URL sources are compared with to tell this repository
	// from others, and RepoURLSource where it came from.
	RepoURL       string `json:"repoURL,omitempty"`
	RepoURLSource string `json:"repoURLSource,omitempty"`
	// Roots name the root Applications found (name and file).
	Roots []string `json:"roots"`
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

// Run validates a loaded repository: it builds the tree of Applications
// Argo CD would see from the roots (apptree) and checks every one of them.
func Run(ctx context.Context, r *repo.Repo, opts Options) (*Result, error) {
	tree, err := apptree.Build(ctx, r, apptree.Options{Roots: opts.Roots, Parallel: opts.Parallel, KustomizeBuildOptions: opts.KustomizeBuildOptions,
		Online: opts.Online, Charts: opts.Charts})
	if err != nil {
		return nil, err
	}
	return Check(ctx, tree, opts)
}

// Check validates an already built tree.
func Check(ctx context.Context, tree *apptree.Tree, opts Options) (*Result, error) {
	r := tree.Repo
	v := &validator{r: r, clusters: knownClusters(r)}
	v.loadProblems(tree)
	for _, p := range tree.Problems {
		v.add(newFinding(p.Rule, p.Pos, p.Hint, "%s", p.Message))
	}
	schemas, err := loadSchemas(r)
	if err != nil {
		return nil, err
	}
	v.schemas = schemas

	g, gctx := errgroup.WithContext(ctx)
	limit := opts.Parallel
	if limit <= 0 {
		limit = runtime.GOMAXPROCS(0)
	}
	g.SetLimit(limit)
	for _, n := range tree.Nodes {
		g.Go(func() error {
			v.checkApplication(n)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	v.checkDuplicateNames(tree)
	v.checkSharedResources(tree)
	v.checkReachability(tree)
	v.checkRetryRefresh(tree)
	v.checkImageDigests(tree)
	v.checkRefreshPaths(tree)
	SortFindings(v.findings)
	res := &Result{Findings: v.findings, Apps: len(tree.Nodes), Projects: len(r.Projects),
		RepoURL: r.URL, RepoURLSource: r.URLSource, Roots: []string{}}
	for _, n := range tree.Roots {
		res.Roots = append(res.Roots, n.Label())
	}
	return res, nil
}

func (v *validator) checkApplication(n *apptree.Node) {
	app := n.App
	cluster := v.checkDestination(app)
	proj := v.checkProject(app, cluster)
	for _, s := range n.Sources {
		for _, o := range s.Objects {
			v.checkManifest(app, s.Index, o)
			if proj != nil {
				v.checkResourcePermitted(app, s.Index, proj, cluster, o)
			}
		}
	}
}

// loadProblems turns load-time problems into findings, except in files no
// Application reads and that hold no Argo CD object: a tool's templates,
// CI configs and the like are none of Argo CD's business.
func (v *validator) loadProblems(tree *apptree.Tree) {
	for _, p := range v.r.Problems {
		switch {
		case !strings.HasPrefix(p.Rule, "parse.") || tree.Reached(p.Pos.File):
			v.add(newFinding(p.Rule, p.Pos, p.Hint, "%s", p.Message))
		default:
			switch argoContent(v.r.Root, p.Pos.File) {
			case argoObject:
				v.add(newFinding(p.Rule, p.Pos, p.Hint, "%s", p.Message))
			case argoTemplate:
				v.add(newFinding("parse.unreached", p.Pos, "if this is a template for another tool, nothing needs to change; if Argo CD should read it, point an Application at its directory",
					"no Application reads this file, and it does not parse: %s", p.Message))
			}
		}
	}
}

type argoKind int

const (
	argoNone argoKind = iota
	argoObject
	argoTemplate
)

// argoContent classifies a file by its text: does it declare Argo CD
// objects, and is it a template for some other tool ({{ }}, {% %})?
func argoContent(root, rel string) argoKind {
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil || len(data) > repo.MaxFileSize {
		return argoObject // unreadable: report as it is
	}
	text := string(data)
	if !strings.Contains(text, "argoproj.io") {
		return argoNone
	}
	if templateLineRE.MatchString(text) {
		return argoTemplate
	}
	return argoObject
}

// templateLineRE finds a line that starts with a template directive
// ({% … %}, {{- range }}): ApplicationSets hold {{…}} only inside values.
var templateLineRE = regexp.MustCompile(`(?m)^\s*(\{%|\{\{)`)

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
