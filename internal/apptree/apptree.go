// Package apptree finds what Argo CD sees from a repository: the root
// Applications (those no other Application deploys, plus any named
// explicitly), the objects their sources render to, and the Applications
// and ApplicationSets taken from that rendered output — Helm-templated and
// Kustomize-patched children, recursively. Validation (`tug validate`) and
// rendered diffs build on it.
package apptree

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"runtime"
	"sort"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/chartfetch"
	"github.com/tug-gitops/tug/internal/repo"
)

// maxDepth bounds app-of-apps nesting; deeper trees are reported, not
// followed (a chart that renders itself would never end).
const maxDepth = 16

// Options tune Build.
type Options struct {
	// Roots are extra files holding root Applications or ApplicationSets
	// (applied by hand, by Terraform, by `argocd app create`); they may lie
	// outside the repository.
	Roots []string
	// Parallel is how many Applications render at once; 0 means GOMAXPROCS.
	Parallel int
	// KustomizeBuildOptions are added to argocd-cm's kustomize.buildOptions,
	// for an Argo CD whose argocd-cm is not in the repository (e.g.
	// "--enable-helm").
	KustomizeBuildOptions string
	// Online fetches charts from Helm repositories and OCI registries into
	// Charts (default: chartfetch.DefaultDir) and renders them; offline,
	// the default, opens no network connection and reports them as
	// source.remote.
	Online bool
	Charts *chartfetch.Cache
}

// Source is one rendered source of an Application.
type Source struct {
	Index int
	// Kind is "helm", "kustomize", "directory", or "" when nothing rendered.
	Kind    string
	Objects []*unstructured.Unstructured
	// Dir is the repository-relative directory the source reads ("" when
	// the source is outside the repository or missing).
	Dir string
	// Files are the repository-relative files the render read (directory
	// and Kustomize sources).
	Files []string
	// templates[i] is the repository-relative file that produced
	// Objects[i] when known (a Helm template, a manifest file).
	templates []string
	// ValueFiles are the repository-relative Helm value files the render
	// read, in order.
	ValueFiles []string
	// Failed is set when the source could not be rendered (reported).
	Failed bool
	// origins are files whose text produced the objects' values (value
	// files first), for locating a value in a child.
	origins []string
}

// Node is an Application in the tree.
type Node struct {
	App      *repo.Application
	Parent   *Node
	Root     *Node
	Children []*Node
	Sources  []Source
	// Unreachable marks a declared Application that lies inside another
	// Application's source directory but that source does not deploy it.
	Unreachable bool
	// Explicit marks a root named with Options.Roots.
	Explicit bool

	declared bool
	consumed bool // its file is read by another source that does not deploy it as is
}

// Objects returns the objects all its sources render.
func (n *Node) Objects() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, s := range n.Sources {
		out = append(out, s.Objects...)
	}
	return out
}

// Tree is every Application reachable from the roots, rendered.
type Tree struct {
	Repo  *repo.Repo
	Roots []*Node
	// Nodes are all checked Applications, roots first, then breadth-first.
	Nodes []*Node
	// Problems are what rendering found, as findings with rule IDs.
	Problems []repo.Problem
	// URLInferred is set when the repository's URL was neither in tug.yaml
	// nor an origin remote but taken from the sources whose paths exist.
	URLInferred bool

	readFiles map[string]bool
	readDirs  []string
}

// Reached reports whether a repository-relative file is read by some
// rendered source or declares a checked Application.
func (t *Tree) Reached(file string) bool {
	if t.readFiles[file] {
		return true
	}
	for _, n := range t.Nodes {
		if n.App.Pos.File == file && n.App.RenderedFrom == "" {
			return true
		}
	}
	for _, d := range t.readDirs {
		if d == "." || strings.HasPrefix(file, d+"/") {
			return true
		}
	}
	return false
}

type builder struct {
	t        *Tree
	r        *repo.Repo
	opts     Options
	declared map[string]*Node // ns/name of declared Applications
	sets     map[string][]*Node
	problems []repo.Problem
}

// Build loads the roots named in opts, renders every Application and
// follows the Argo CD objects in rendered output.
func Build(ctx context.Context, r *repo.Repo, opts Options) (*Tree, error) {
	t := &Tree{Repo: r, readFiles: map[string]bool{}}
	if opts.Online && opts.Charts == nil {
		opts.Charts = &chartfetch.Cache{Dir: chartfetch.DefaultDir()}
	}
	b := &builder{t: t, r: r, opts: opts, declared: map[string]*Node{}, sets: map[string][]*Node{}}
	explicit := map[*repo.Application]bool{}
	for _, f := range opts.Roots {
		apps, _, err := r.LoadExtra(f)
		if err != nil {
			return nil, fmt.Errorf("--root %s: %w", f, err)
		}
		if len(apps) == 0 {
			return nil, fmt.Errorf("--root %s: no Application or ApplicationSet in the file", f)
		}
		for _, a := range apps {
			explicit[a] = true
		}
	}
	t.URLInferred = b.inferURL()
	var level []*Node
	for _, a := range r.Applications {
		n := &Node{App: a, declared: true, Explicit: explicit[a]}
		level = append(level, n)
		t.Nodes = append(t.Nodes, n)
		if a.GeneratedBy != nil {
			b.sets[a.GeneratedBy.Namespace+"/"+a.GeneratedBy.Name] = append(b.sets[a.GeneratedBy.Namespace+"/"+a.GeneratedBy.Name], n)
		} else if a.Name != "" {
			if _, dup := b.declared[appKey(a, "")]; !dup {
				b.declared[appKey(a, "")] = n
			}
		}
	}
	for depth := 0; len(level) > 0; depth++ {
		if depth == maxDepth {
			for _, n := range level {
				b.problem("source.render-failed", n.App.Pos, "an Application renders itself, directly or through its children",
					"Application %s: app-of-apps nesting deeper than %d levels is not followed", n.App.Describe(), maxDepth)
			}
			break
		}
		if err := b.renderAll(ctx, level); err != nil {
			return nil, err
		}
		level = b.followChildren(level)
		t.Nodes = append(t.Nodes, level...)
	}
	b.assignRoots()
	t.Problems = b.problems
	return t, nil
}

func (b *builder) problem(rule string, pos repo.Position, hint, format string, args ...any) {
	b.problems = append(b.problems, repo.Problem{Rule: rule, Pos: pos, Hint: hint, Message: fmt.Sprintf(format, args...)})
}

// renderAll renders a level's Applications in parallel; each writes only its
// own node, problems are gathered per node and appended in order.
func (b *builder) renderAll(ctx context.Context, level []*Node) error {
	g, gctx := errgroup.WithContext(ctx)
	limit := b.opts.Parallel
	if limit <= 0 {
		limit = runtime.GOMAXPROCS(0)
	}
	g.SetLimit(limit)
	problems := make([][]repo.Problem, len(level))
	for i, n := range level {
		g.Go(func() error {
			problems[i] = b.renderNode(gctx, n)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, n := range level {
		b.problems = append(b.problems, problems[i]...)
		for _, s := range n.Sources {
			for _, f := range s.Files {
				b.t.readFiles[f] = true
			}
			if s.Kind == "helm" && s.Dir != "" {
				b.t.readDirs = append(b.t.readDirs, s.Dir)
			}
		}
	}
	return nil
}

// followChildren takes the Argo CD objects out of a level's rendered
// output: declared ones it renders as they are become children, others are
// decoded from the output (and expanded, for ApplicationSets) into the next
// level.
func (b *builder) followChildren(level []*Node) []*Node {
	var next []*Node
	for _, n := range level {
		for si := range n.Sources {
			s := &n.Sources[si]
			for oi, o := range s.Objects {
				if !strings.HasPrefix(o.GetAPIVersion(), "argoproj.io/") {
					continue
				}
				next = append(next, b.child(n, s, oi, o)...)
			}
		}
		b.markConsumed(n)
	}
	return next
}

func (b *builder) child(n *Node, s *Source, oi int, o *unstructured.Unstructured) []*Node {
	ns := o.GetNamespace()
	if ns == "" {
		ns = n.App.Spec.Destination.Namespace
	}
	switch o.GetKind() {
	case "Application":
		key := nsOr(ns) + "/" + o.GetName()
		for a := n; a != nil; a = a.Parent {
			if appKey(a.App, "") == key {
				return nil // an Application managing itself (a root reading its own directory)
			}
		}
		if d, ok := b.declared[key]; ok && s.read(d.App.Pos.File) && sameAsDeclared(d.App, o) {
			b.claim(n, d)
			return nil
		}
	case "ApplicationSet":
		if gen, ok := b.sets[nsOr(ns)+"/"+o.GetName()]; ok && len(gen) > 0 && gen[0] != n && s.read(gen[0].App.Pos.File) && sameSetAsDeclared(gen[0].App.GeneratedBy, o) {
			for _, d := range gen {
				b.claim(n, d)
			}
			return nil
		}
		if _, ok := b.setDeclared(nsOr(ns), o.GetName(), s); ok {
			return nil // declared, generates nothing
		}
	case "AppProject":
		if b.r.Project(o.GetName()) == nil {
			if d := b.r.DecodeRendered(o.Object, b.pos(n, s, oi), "", nil); d.Project != nil {
				b.r.Projects = append(b.r.Projects, d.Project)
			}
		}
		return nil
	default:
		return nil
	}
	if o.GetNamespace() == "" {
		o.SetNamespace(ns) // applied into the parent's destination namespace
	}
	from := fmt.Sprintf("%s by Application %q", b.pos(n, s, oi).File, n.App.Name)
	origins := append([]string(nil), s.origins...)
	if oi < len(s.templates) && s.templates[oi] != "" {
		origins = append(origins, s.templates[oi])
	}
	d := b.r.DecodeRendered(o.Object, b.pos(n, s, oi), from, origins)
	b.problems = append(b.problems, b.newProblems(d.Problems)...)
	var out []*Node
	switch {
	case d.App != nil:
		c := &Node{App: d.App}
		b.claim(n, c)
		out = append(out, c)
	case d.Set != nil:
		apps, problems := b.r.Expand(d.Set)
		b.problems = append(b.problems, problems...)
		for _, a := range apps {
			a.Origins = append(a.Origins, origins...)
			c := &Node{App: a}
			b.claim(n, c)
			out = append(out, c)
		}
	}
	return out
}

// setDeclared finds a declared ApplicationSet that generated nothing.
func (b *builder) setDeclared(ns, name string, s *Source) (*repo.ApplicationSet, bool) {
	for _, set := range b.r.ApplicationSets {
		if nsOr(set.Namespace) == ns && set.Name == name && s.read(set.Pos.File) && len(b.sets[ns+"/"+name]) == 0 {
			return set, true
		}
	}
	return nil, false
}

// newProblems drops decoding problems a declared file already reported
// (the same object read from its file and rendered through a build).
func (b *builder) newProblems(ps []repo.Problem) []repo.Problem {
	var out []repo.Problem
	for _, p := range ps {
		dup := false
		for _, q := range b.r.Problems {
			if q.Rule == p.Rule && q.Message == p.Message {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out
}

// pos is where a rendered object came from: its template or manifest file,
// else the source in the parent Application.
func (b *builder) pos(n *Node, s *Source, oi int) repo.Position {
	if oi < len(s.templates) && s.templates[oi] != "" {
		return repo.Position{File: s.templates[oi]}
	}
	if s.Dir != "" {
		return repo.Position{File: s.Dir}
	}
	return n.App.FieldPos(sourcePath(n.App, s.Index))
}

func (b *builder) claim(parent, child *Node) {
	if child.Parent != nil || child == parent {
		return
	}
	for p := parent; p != nil; p = p.Parent {
		if p == child {
			return // a cycle: the child deploys its own ancestor
		}
	}
	child.Parent = parent
	parent.Children = append(parent.Children, child)
}

// markConsumed marks declared Applications whose files another
// Application's source reads but renders differently (a Kustomize base its
// overlay patches): Argo CD sees only the rendered version.
func (b *builder) markConsumed(n *Node) {
	for _, d := range b.t.Nodes {
		if !d.declared || d == n || d.Parent != nil || d.consumed {
			continue
		}
		for _, s := range n.Sources {
			if s.Kind == "kustomize" && s.read(d.App.Pos.File) {
				d.consumed = true
			}
		}
	}
}

// assignRoots makes every unclaimed, unconsumed declared Application a root
// and sets each node's Root; nodes only reachable through a cycle become
// roots too, so nothing is silently skipped.
func (b *builder) assignRoots() {
	t := b.t
	var roots []*Node
	for _, n := range t.Nodes {
		if n.Parent == nil && n.declared && (!n.consumed || n.Explicit) {
			roots = append(roots, n)
			n.Unreachable = !n.Explicit && b.insideSourceDir(n)
		}
	}
	var walk func(n, root *Node)
	walk = func(n, root *Node) {
		n.Root = root
		for _, c := range n.Children {
			if c.Root == nil {
				walk(c, root)
			}
		}
	}
	for _, r := range roots {
		walk(r, r)
	}
	for _, n := range t.Nodes {
		if n.Root == nil && n.Parent != nil && !n.consumed {
			roots = append(roots, n)
			walk(n, n)
		}
	}
	// checked: roots and what they reach; consumed files are not checked.
	var nodes []*Node
	for _, n := range t.Nodes {
		if n.Root != nil {
			nodes = append(nodes, n)
		}
	}
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].Parent == nil && nodes[j].Parent != nil })
	t.Roots, t.Nodes = roots, nodes
}

// insideSourceDir: the Application's file lies in a directory some other
// Application's source reads.
func (b *builder) insideSourceDir(n *Node) bool {
	for _, o := range b.t.Nodes {
		if o == n {
			continue
		}
		for _, s := range o.Sources {
			if s.Dir != "" && s.Kind == "directory" && !s.Failed && (s.Dir == "." || strings.HasPrefix(n.App.Pos.File, s.Dir+"/")) {
				return true
			}
		}
	}
	return false
}

// read reports whether the source read a repository-relative file.
func (s *Source) read(file string) bool {
	for _, f := range s.Files {
		if f == file {
			return true
		}
	}
	return false
}

// sameAsDeclared: the rendered object is the declared file's object as
// written (a directory source, or a Kustomize build that changed nothing
// Argo CD reads), so the declared one with its precise positions stands for it.
func sameAsDeclared(a *repo.Application, o *unstructured.Unstructured) bool {
	var got v1alpha1.ApplicationSpec
	return decodeSpec(o, &got) && reflect.DeepEqual(a.Spec, got)
}

func sameSetAsDeclared(s *repo.ApplicationSet, o *unstructured.Unstructured) bool {
	var got v1alpha1.ApplicationSetSpec
	return s != nil && decodeSpec(o, &got) && reflect.DeepEqual(s.Spec, got)
}

func decodeSpec(o *unstructured.Unstructured, into any) bool {
	data, err := json.Marshal(o.Object["spec"])
	return err == nil && json.Unmarshal(data, into) == nil
}

func appKey(a *repo.Application, defaultNS string) string {
	ns := a.Namespace
	if ns == "" {
		ns = defaultNS
	}
	return nsOr(ns) + "/" + a.Name
}

func nsOr(ns string) string {
	if ns == "" {
		return repo.ControllerNamespace
	}
	return ns
}

func sourcePath(app *repo.Application, i int) string {
	if app.Spec.HasMultipleSources() {
		return fmt.Sprintf("spec.sources[%d]", i)
	}
	return "spec.source"
}

// Label names a root for the summary: its name and file.
func (n *Node) Label() string {
	return fmt.Sprintf("%s (%s)", n.App.Name, path.Clean(n.App.Pos.File))
}

// RenderSources renders one Application's sources as Build does, without
// following the Applications they render, and returns what Build would
// report about it (rendering a revision app by app, as tug diff does).
func RenderSources(ctx context.Context, r *repo.Repo, app *repo.Application) ([]Source, []repo.Problem) {
	b := &builder{t: &Tree{Repo: r, readFiles: map[string]bool{}}, r: r}
	n := &Node{App: app}
	ps := b.renderNode(ctx, n)
	return n.Sources, ps
}
