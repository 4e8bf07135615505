package apptree

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/git"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/chartfetch"
	"github.com/tug-gitops/tug/internal/render"
	"github.com/tug-gitops/tug/internal/repo"
)

// OnlineHint ends the source.remote messages of what --online fetches:
// Helm-repository and OCI charts, remote kustomize bases, remote value
// files and missing chart dependencies.
const OnlineHint = "not fetched: validation is offline and opens no network connection; run with --online to fetch it"

// problems collects one node's findings while it renders in parallel.
type problems []repo.Problem

func (ps *problems) add(rule string, pos repo.Position, hint, format string, args ...any) {
	*ps = append(*ps, repo.Problem{Rule: rule, Pos: pos, Hint: hint, Message: fmt.Sprintf(format, args...)})
}

func (b *builder) renderNode(ctx context.Context, n *Node) []repo.Problem {
	var ps problems
	for i, src := range n.App.Spec.GetSources() {
		if ctx.Err() != nil {
			break
		}
		n.Sources = append(n.Sources, b.renderSource(ctx, n.App, i, src, &ps))
	}
	return ps
}

// inferURL fills in the repository's URL when neither tug.yaml nor an origin
// remote names it: the repoURL most sources whose paths exist here use.
func (b *builder) inferURL() bool {
	if b.r.URL != "" {
		return false
	}
	count := map[string]int{}
	spelled := map[string]string{} // normalised URL -> first spelling seen
	for _, a := range b.r.Applications {
		for _, s := range a.Spec.GetSources() {
			if s.RepoURL != "" && s.Chart == "" && s.Path != "" && isDir(filepath.Join(b.r.Root, filepath.FromSlash(cleanRel(s.Path)))) {
				k := git.NormalizeGitURL(s.RepoURL)
				count[k]++
				if _, ok := spelled[k]; !ok {
					spelled[k] = s.RepoURL
				}
			}
		}
	}
	best := ""
	for u, c := range count {
		if c > count[best] || c == count[best] && u < best {
			best = u
		}
	}
	if best == "" {
		return false
	}
	b.r.URL, b.r.URLSource = spelled[best], "inferred: the repoURL of the sources whose paths exist here"
	return true
}

// IsLocal reports whether a source's repoURL is this repository (compared
// with Argo CD's URL normalisation). With no URL known, every git source
// is taken to be local.
func IsLocal(r *repo.Repo, src v1alpha1.ApplicationSource) bool {
	if src.Chart != "" {
		return false // a chart from a Helm repository or OCI registry
	}
	return r.URL == "" || repo.SameRepo(src.RepoURL, r.URL)
}

func (b *builder) renderSource(ctx context.Context, app *repo.Application, i int, src v1alpha1.ApplicationSource, ps *problems) Source {
	out := Source{Index: i}
	sp := sourcePath(app, i)
	if src.RepoURL == "" {
		return out // parse.schema reported it
	}
	if src.Chart != "" && b.opts.Online {
		dir, err := b.opts.Charts.Fetch(ctx, src.RepoURL, src.Chart, src.TargetRevision)
		if err != nil {
			out.Failed = true
			ps.add("source.render-failed", app.ValuePos(b.r.Root, sp+".chart", src.Chart), "check the chart's name, version (targetRevision) and repository; tug fetched it with --online",
				"Application %s: %v", app.Describe(), err)
			return out
		}
		out.Kind = "helm"
		b.renderHelm(ctx, app, i, src, dir, &out, ps)
		return out
	}
	if src.Chart != "" {
		ps.add("source.remote", app.ValuePos(b.r.Root, sp+".chart", src.Chart), OnlineHint,
			"Application %s: chart %s %s from %s is downloaded by Argo CD and is not rendered offline", app.Describe(), src.Chart, src.TargetRevision, src.RepoURL)
		b.checkValueFiles(ctx, app, i, src, "", ps)
		return out
	}
	if !IsLocal(b.r, src) {
		ps.add("source.external", app.ValuePos(b.r.Root, sp+".repoURL", src.RepoURL),
			"set repoURL in tug.yaml (or the origin remote) if this is meant to be the repository itself",
			"Application %s: %s is another repository (this one is %s) and is not rendered", app.Describe(), src.RepoURL, b.r.URL)
		return out
	}
	if src.Ref != "" && src.Path == "" {
		return out // a $ref values source, used by the others
	}
	rel := cleanRel(src.Path)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		ps.add("source.path-missing", app.ValuePos(b.r.Root, sp+".path", src.Path), "paths are relative to the repository root",
			"Application %s: path %q leaves the repository", app.Describe(), src.Path)
		return out
	}
	dir := filepath.Join(b.r.Root, filepath.FromSlash(rel))
	if !isDir(dir) {
		if b.r.URL == "" {
			ps.add("source.external", app.ValuePos(b.r.Root, sp+".path", src.Path),
				"tug cannot tell which repository this is: set repoURL in tug.yaml or add an origin remote",
				"Application %s: path %q is not in this checkout, so %s is taken to be another repository", app.Describe(), src.Path, src.RepoURL)
			return out
		}
		ps.add("source.path-missing", app.ValuePos(b.r.Root, sp+".path", src.Path), b.pathHint(rel),
			"Application %s: path %q does not exist in the repository", app.Describe(), src.Path)
		return out
	}
	out.Dir = rel
	switch {
	case exists(filepath.Join(dir, "Chart.yaml")) || src.Helm != nil:
		out.Kind = "helm"
		b.renderHelm(ctx, app, i, src, dir, &out, ps)
	case hasKustomization(dir) || src.Kustomize != nil:
		out.Kind = "kustomize"
		b.renderKustomize(app, i, src, dir, &out, ps)
	default:
		out.Kind = "directory"
		opts := render.DirectoryOptions{}
		if d := src.Directory; d != nil {
			opts.Recurse, opts.Include, opts.Exclude = d.Recurse, d.Include, d.Exclude
		}
		objs, files, err := render.DirectoryWithFiles(dir, opts)
		out.Files = b.rels(files)
		if err != nil {
			b.renderFailed(&out, app, sp, err, ps)
			return out
		}
		out.Objects = objs
	}
	return out
}

func (b *builder) renderFailed(out *Source, app *repo.Application, sp string, err error, ps *problems) {
	out.Failed = true
	ps.add("source.render-failed", app.FieldPos(sp), "run the same render locally to see the full error",
		"Application %s: %v", app.Describe(), err)
}

func (b *builder) renderKustomize(app *repo.Application, i int, src v1alpha1.ApplicationSource, dir string, out *Source, ps *problems) {
	sp := sourcePath(app, i)
	// Online, kustomize's own loader fetches remote bases and components
	// (git clones into a temporary directory, as Argo CD's kustomize does).
	// helmCharts that are not vendored are not fetched even online:
	// kustomize's inflator would `helm pull` them into the checkout.
	reported := false
	for _, ref := range render.KustomizeRemoteRefs(dir) {
		switch {
		case ref.HelmChart:
			home := b.r.Rel(filepath.Join(filepath.Dir(ref.Kustomization), ref.ChartHome))
			ps.add("source.remote", repo.Position{File: b.r.Rel(ref.Kustomization)},
				"vendor it under "+home+" (helm pull --untar --untardir "+home+"): kustomize would download it into the checkout, which tug does not let it do, even with --online",
				"Application %s: the kustomization's helmCharts needs %s from the network; the build is not checked", app.Describe(), ref.URL)
			reported = true
		case !b.opts.Online:
			ps.add("source.remote", repo.Position{File: b.r.Rel(ref.Kustomization)}, OnlineHint,
				"Application %s: the kustomization needs %s from the network; the build is not checked offline", app.Describe(), ref.URL)
			reported = true
		}
	}
	if reported {
		return
	}
	opts := render.KustomizeOptions{BuildOptions: strings.TrimSpace(b.r.ArgoCDConfig["kustomize.buildOptions"] + " " + b.opts.KustomizeBuildOptions)}
	if !slices.Contains(strings.Fields(opts.BuildOptions), "--enable-helm") {
		if files := render.KustomizeHelmCharts(dir); len(files) > 0 {
			b.helmChartsDisabled(app, files, ps)
			return
		}
	}
	if k := src.Kustomize; k != nil {
		e := &render.KustomizeEdit{NamePrefix: k.NamePrefix, NameSuffix: k.NameSuffix, Namespace: k.Namespace,
			CommonLabels: k.CommonLabels, CommonAnnotations: k.CommonAnnotations, Components: k.Components}
		for _, img := range k.Images {
			e.Images = append(e.Images, string(img))
		}
		e.Patches = toMaps(k.Patches)
		e.Replicas = toMaps(k.Replicas)
		opts.Edit = e
	}
	build, err := render.KustomizeWith(dir, opts)
	if err != nil {
		b.renderFailed(out, app, sp, err, ps)
		return
	}
	out.Objects = build.Objects
	for _, f := range b.rels(build.Files) {
		if f != ".." && !strings.HasPrefix(f, "../") {
			out.Files = append(out.Files, f) // not a remote base's clone
		}
	}
	// Values in children come from the overlay before the base.
	out.origins = append([]string(nil), out.Files...)
	sort.SliceStable(out.origins, func(i, j int) bool {
		return strings.HasPrefix(out.origins[i], out.Dir+"/") && !strings.HasPrefix(out.origins[j], out.Dir+"/")
	})
}

// helmChartsDisabled reports a kustomization with helmCharts that Argo CD
// builds only with --enable-helm: an error when the repository's argocd-cm
// says how Argo CD builds and lacks it, else info (the setting is unknown).
func (b *builder) helmChartsDisabled(app *repo.Application, files []string, ps *problems) {
	for _, f := range files {
		pos := repo.Position{File: b.r.Rel(f)}
		if at := b.r.ArgoCDConfigAt; at.File != "" {
			ps.add("source.helm-charts-disabled", pos, fmt.Sprintf("add --enable-helm to kustomize.buildOptions in %s", at),
				"Application %s: the kustomization inflates helmCharts, which kustomize builds only with --enable-helm, and argocd-cm (%s) sets kustomize.buildOptions to %q",
				app.Describe(), at, b.r.ArgoCDConfig["kustomize.buildOptions"])
			continue
		}
		ps.add("source.helm-charts", pos, "run tug validate --enable-helm if your Argo CD's kustomize.buildOptions has --enable-helm (argocd-cm is not in this repository)",
			"Application %s: the kustomization inflates helmCharts, which kustomize builds only with --enable-helm; not built", app.Describe())
	}
}

func toMaps[T any](items []T) []map[string]any {
	var out []map[string]any
	for _, it := range items {
		data, err := json.Marshal(it)
		if err != nil {
			continue
		}
		m := map[string]any{}
		if json.Unmarshal(data, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// renderHelm resolves value files like Argo CD (relative to the chart, or
// $ref/… relative to a referenced source) and renders with the Helm SDK.
func (b *builder) renderHelm(ctx context.Context, app *repo.Application, i int, src v1alpha1.ApplicationSource, dir string, out *Source, ps *problems) {
	sp := sourcePath(app, i)
	opts := render.HelmOptions{ReleaseName: app.Name, Namespace: app.Spec.Destination.Namespace}
	valueFiles, ok := b.checkValueFiles(ctx, app, i, src, dir, ps)
	if !ok {
		out.Failed = true
		return
	}
	opts.ValueFiles = valueFiles
	out.ValueFiles = b.rels(valueFiles)
	if h := src.Helm; h != nil {
		if h.ReleaseName != "" {
			opts.ReleaseName = h.ReleaseName
		}
		if h.Namespace != "" {
			opts.Namespace = h.Namespace
		}
		opts.KubeVersion = h.KubeVersion
		opts.APIVersions = h.APIVersions
		opts.Values = h.ValuesYAML()
		for _, p := range h.Parameters {
			opts.Parameters = append(opts.Parameters, render.HelmParameter{Name: p.Name, Value: p.Value, ForceString: p.ForceString})
		}
	}
	deps, ok := b.dependencies(ctx, app, app.FieldPos(sp), dir, ps)
	if !ok {
		out.Failed = true
		return
	}
	opts.Dependencies = deps
	objs, err := render.HelmWithSources(ctx, dir, opts)
	if err != nil {
		b.renderFailed(out, app, sp, err, ps)
		return
	}
	// A chart fetched with --online lies outside the repository: findings
	// on its objects point at the Application, not into tug's cache.
	inRepo := func(p string) string {
		if rel := b.r.Rel(p); rel != ".." && !strings.HasPrefix(rel, "../") {
			return rel
		}
		return ""
	}
	for _, p := range append(valueFiles, filepath.Join(dir, "values.yaml")) {
		if rel := inRepo(p); rel != "" {
			out.origins = append(out.origins, rel)
		}
	}
	for _, d := range deps { // a file:// dependency's defaults are in the repository
		p := filepath.Join(d, "values.yaml")
		if rel := inRepo(p); rel != "" {
			out.origins = append(out.origins, rel)
		}
	}
	for _, o := range objs {
		out.Objects = append(out.Objects, o.Object)
		t := ""
		if o.Template != "" {
			t = inRepo(o.Template)
		}
		out.templates = append(out.templates, t)
	}
}

// dependencies handles a chart's dependencies that charts/ does not carry,
// which Argo CD's `helm dependency build` downloads: offline they are
// source.remote and the chart renders without them; online they are
// fetched into the cache (Chart.lock's version, else Chart.yaml's version
// or range) and returned for rendering, the checkout left as it is. ok is
// false when one cannot be fetched.
func (b *builder) dependencies(ctx context.Context, app *repo.Application, appPos repo.Position, dir string, ps *problems) (dirs []string, ok bool) {
	deps, err := render.MissingDependencies(dir)
	if err != nil {
		return nil, true // the render reports the chart that does not load
	}
	chartYAML := filepath.Join(dir, "Chart.yaml")
	for _, d := range deps {
		pos := repo.Position{File: b.r.Rel(chartYAML), Line: dependencyLine(chartYAML, d.Name)}
		if pos.File == ".." || strings.HasPrefix(pos.File, "../") {
			pos = appPos // a fetched chart, in the cache
		}
		if local, ok := strings.CutPrefix(d.Repository, "file://"); ok {
			// helm dependency build copies it from the checkout: no network.
			p := filepath.Join(dir, filepath.FromSlash(local))
			if rel := b.r.Rel(p); rel != ".." && !strings.HasPrefix(rel, "../") && exists(filepath.Join(p, "Chart.yaml")) {
				dirs = append(dirs, p)
				continue
			}
		}
		fetchable := strings.HasPrefix(d.Repository, "https://") || strings.HasPrefix(d.Repository, "http://") || strings.HasPrefix(d.Repository, "oci://")
		if !fetchable {
			hint := "write the repository's URL (https:// or oci://) in Chart.yaml: Argo CD knows no helm repo names, and tug cannot fetch this one"
			if strings.HasPrefix(d.Repository, "file://") {
				hint = "the file:// path (relative to the chart) must be a chart directory in this repository; helm dependency build fails on it otherwise"
			}
			ps.add("source.remote", pos, hint,
				"Application %s: chart dependency %s %s from %q is not in %s/charts; it renders without it", app.Describe(), d.Name, dependencyVersion(d), d.Repository, b.r.Rel(dir))
			continue
		}
		if !b.opts.Online {
			ps.add("source.remote", pos,
				"run `helm dependency build "+b.r.Rel(dir)+"` and commit charts/, or accept that Argo CD downloads it; "+OnlineHint,
				"Application %s: chart dependency %s %s from %s is not in %s/charts; it renders without it", app.Describe(), d.Name, dependencyVersion(d), d.Repository, b.r.Rel(dir))
			continue
		}
		cdir, err := b.opts.Charts.Fetch(ctx, d.Repository, d.Name, d.Wanted())
		if err != nil {
			ps.add("source.render-failed", pos, "check the dependency's name, version and repository (Chart.lock's version wins when there is one); tug fetched it with --online",
				"Application %s: chart dependency %s %s from %s: %v", app.Describe(), d.Name, dependencyVersion(d), d.Repository, err)
			return nil, false
		}
		dirs = append(dirs, cdir)
	}
	return dirs, true
}

// dependencyVersion is Chart.yaml's version of d, and Chart.lock's.
func dependencyVersion(d render.MissingDependency) string {
	if d.Locked != "" && d.Locked != d.Version {
		return d.Version + " (Chart.lock: " + d.Locked + ")"
	}
	return d.Version
}

// dependencyLine is the line of Chart.yaml's dependency entry named name
// (0 when not found).
func dependencyLine(chartYAML, name string) int {
	data, err := os.ReadFile(chartYAML)
	if err != nil {
		return 0
	}
	in := false
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "dependencies:"):
			in = true
		case in && line != "" && line[0] != ' ' && line[0] != '-' && line[0] != '#':
			in = false
		case in && strings.TrimPrefix(strings.TrimPrefix(t, "- "), " ") == "name: "+name:
			return i + 1
		}
	}
	return 0
}

// checkValueFiles resolves helm.valueFiles as Argo CD does and reports the
// missing ones; chartDir is "" for a chart from a Helm repository (only
// $ref value files can be checked then). ok is false when rendering must
// stop (a missing file Argo CD would fail on).
func (b *builder) checkValueFiles(ctx context.Context, app *repo.Application, i int, src v1alpha1.ApplicationSource, chartDir string, ps *problems) ([]string, bool) {
	h := src.Helm
	if h == nil {
		return nil, true
	}
	sp := sourcePath(app, i)
	var files []string
	ok := true
	for j, vf := range h.ValueFiles {
		field := fmt.Sprintf("%s.helm.valueFiles[%d]", sp, j)
		if strings.Contains(vf, "://") {
			if !b.opts.Online {
				ps.add("source.remote", app.ValuePos(b.r.Root, field, vf), OnlineHint,
					"Application %s: value file %s is downloaded by Argo CD and is not checked offline", app.Describe(), vf)
				continue
			}
			p, err := b.opts.Charts.File(ctx, vf)
			switch {
			case chartfetch.IsNotFound(err):
				ps.add("source.values-missing", app.ValuePos(b.r.Root, field, vf), "check the URL; Argo CD's helm fails on it the same way",
					"Application %s: value file %s not found: %v", app.Describe(), vf, err)
				ok = false
			case err != nil:
				ps.add("source.render-failed", app.ValuePos(b.r.Root, field, vf), "check the URL and that the server answers; tug fetched it with --online",
					"Application %s: value file %s: %v", app.Describe(), vf, err)
				ok = false
			default:
				files = append(files, p)
			}
			continue
		}
		var p string
		if strings.HasPrefix(vf, "$") {
			refName, rest, _ := strings.Cut(strings.TrimPrefix(vf, "$"), "/")
			ref, found := refSource(app, refName)
			if !found {
				ps.add("source.values-ref-unknown", app.ValuePos(b.r.Root, field, vf), refHint(app, refName),
					"Application %s: value file %q names ref %q, which no source of the Application declares", app.Describe(), vf, refName)
				ok = false
				continue
			}
			if !IsLocal(b.r, ref) {
				continue // another repository: not readable offline
			}
			p = filepath.Join(b.r.Root, filepath.FromSlash(cleanRel(ref.Path)), filepath.FromSlash(rest))
		} else {
			if chartDir == "" {
				continue // inside a downloaded chart
			}
			p = filepath.Join(chartDir, filepath.FromSlash(vf))
		}
		if !exists(p) {
			if !h.IgnoreMissingValueFiles {
				ps.add("source.values-missing", app.ValuePos(b.r.Root, field, vf), b.valuesHint(p),
					"Application %s: value file %q not found (looked at %s)", app.Describe(), vf, b.r.Rel(p))
				ok = false
			}
			continue
		}
		files = append(files, p)
	}
	return files, ok
}

func refSource(app *repo.Application, name string) (v1alpha1.ApplicationSource, bool) {
	for _, s := range app.Spec.GetSources() {
		if s.Ref != "" && s.Ref == name {
			return s, true
		}
	}
	return v1alpha1.ApplicationSource{}, false
}

func refHint(app *repo.Application, name string) string {
	var refs []string
	for _, s := range app.Spec.GetSources() {
		if s.Ref != "" {
			refs = append(refs, "$"+s.Ref)
		}
	}
	if len(refs) == 0 {
		return "add a source with ref: " + name + " (repoURL of the repository holding the values), as Argo CD's multi-source Applications need"
	}
	best, bestDist := "", 3
	for _, r := range refs {
		if d := repo.EditDistance("$"+name, r); d < bestDist {
			best, bestDist = r, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %s? the sources declare %s", best, strings.Join(refs, ", "))
	}
	return "the sources declare " + strings.Join(refs, ", ")
}

func (b *builder) rels(files []string) []string {
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, b.r.Rel(f))
	}
	return out
}

func (b *builder) pathHint(rel string) string {
	if s := closestEntry(filepath.Join(b.r.Root, filepath.FromSlash(path.Dir(rel))), path.Base(rel), true); s != "" {
		return fmt.Sprintf("did you mean %q?", path.Join(path.Dir(rel), s))
	}
	return "paths are relative to the repository root, without a leading ./ or /"
}

func (b *builder) valuesHint(p string) string {
	if s := closestEntry(filepath.Dir(p), filepath.Base(p), false); s != "" {
		return fmt.Sprintf("did you mean %q?", b.r.Rel(filepath.Join(filepath.Dir(p), s)))
	}
	return "value files are relative to the chart directory (spec.source.path), or to a $ref source"
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

func cleanRel(p string) string {
	return path.Clean(strings.TrimPrefix(filepath.ToSlash(p), "/"))
}

func hasKustomization(dir string) bool {
	for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if exists(filepath.Join(dir, n)) {
			return true
		}
	}
	return false
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

var _ = unstructured.Unstructured{}
