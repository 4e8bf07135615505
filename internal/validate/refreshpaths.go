package validate

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argopath "github.com/argoproj/argo-cd/v3/util/app/path"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/tug-gitops/tug/internal/apptree"
)

// checkRefreshPaths reports, for each Application with Argo CD's manifest
// paths annotation, the files its render reads that the annotation does not
// cover (source.refresh-paths). A push changing only such a file moves the
// app to the new commit from Argo CD's manifest cache (the webhook's and
// UpdateRevisionForPaths' shortcut) without rendering it again: Argo CD
// keeps deploying what the file said before. Coverage is decided by Argo
// CD's own path code, so it means here what it means to Argo CD.
func (v *validator) checkRefreshPaths(tree *apptree.Tree) {
	in := renderInputs{tree: tree, root: v.r.Root, charts: map[string][]string{}}
	for _, n := range tree.Nodes {
		app := n.App
		if strings.TrimSpace(app.Annotations[v1alpha1.AnnotationKeyManifestGeneratePaths]) == "" {
			continue // no annotation (or an empty one): Argo CD renders on every push
		}
		// Argo CD refreshes the app when the paths of any of its sources
		// match (a multi-source app's $values source has its own).
		var refresh [][]string
		for _, src := range app.Spec.GetSources() {
			refresh = append(refresh, argopath.GetSourceRefreshPaths(&app.Application, src))
		}
		covered := func(f string) bool {
			for _, paths := range refresh {
				if argopath.AppFilesHaveChanged(paths, []string{f}) {
					return true
				}
			}
			return false
		}
		for _, s := range n.Sources {
			if s.Dir == "" || s.Failed {
				continue
			}
			var missed []string
			for _, f := range in.of(s) {
				if !covered(f) {
					missed = append(missed, f)
				}
			}
			if len(missed) == 0 {
				continue
			}
			listed := strings.Join(missed, ", ")
			if len(missed) > 5 {
				listed = fmt.Sprintf("%s and %d more", strings.Join(missed[:5], ", "), len(missed)-5)
			}
			v.add(newFinding("source.refresh-paths",
				app.KeyPos("metadata.annotations", v1alpha1.AnnotationKeyManifestGeneratePaths),
				"add the files or their folders to the annotation (';' between paths, relative to the source path, or absolute from the repository root), or use \".\" for the whole source folder",
				"%s's %s does not cover %s, which its render reads: a push that changes only that leaves Argo CD deploying what it rendered before",
				app.Name, v1alpha1.AnnotationKeyManifestGeneratePaths, listed))
		}
	}
}

// renderInputs finds the repository-relative files a source's render
// reads; a chart folder is loaded once however many Applications use it.
type renderInputs struct {
	tree   *apptree.Tree
	root   string
	charts map[string][]string // chart folder → the files Helm loads from it
	named  map[string]bool     // value files some Application names
}

// of is what source s reads: for a Helm chart, every file Helm loads from
// the chart folder (what .helmignore leaves; templates may read any of them
// through .Files) except value files that only other Applications name,
// plus the value files s names; for a directory or Kustomize source, the
// files its render read.
func (in *renderInputs) of(s apptree.Source) []string {
	if s.Kind != "helm" {
		return s.Files
	}
	if in.named == nil {
		in.named = map[string]bool{}
		for _, n := range in.tree.Nodes {
			for _, o := range n.Sources {
				for _, f := range o.ValueFiles {
					in.named[f] = true
				}
			}
		}
	}
	own := map[string]bool{}
	for _, f := range s.ValueFiles {
		own[f] = true
	}
	var files []string
	for _, f := range in.chart(s.Dir) {
		if !in.named[f] || own[f] {
			files = append(files, f)
		}
	}
	for f := range own {
		if !strings.HasPrefix(f, s.Dir+"/") {
			files = append(files, path.Clean(f))
		}
	}
	sort.Strings(files)
	return files
}

// chart lists the files Helm's loader takes from the chart folder dir.
func (in *renderInputs) chart(dir string) []string {
	if files, ok := in.charts[dir]; ok {
		return files
	}
	var files []string
	if c, err := loader.LoadDir(filepath.Join(in.root, filepath.FromSlash(dir))); err == nil {
		for _, f := range c.Raw {
			files = append(files, path.Join(dir, f.Name))
		}
	}
	in.charts[dir] = files
	return files
}
