package validate

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argopath "github.com/argoproj/argo-cd/v3/util/app/path"

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
	for _, n := range tree.Nodes {
		app := n.App
		if strings.TrimSpace(app.Annotations[v1alpha1.AnnotationKeyManifestGeneratePaths]) == "" {
			continue // no annotation (or an empty one): Argo CD renders on every push
		}
		sources := app.Spec.GetSources()
		for _, s := range n.Sources {
			if s.Dir == "" || s.Failed || s.Index >= len(sources) {
				continue
			}
			refresh := argopath.GetSourceRefreshPaths(&app.Application, sources[s.Index])
			var missed []string
			for _, f := range v.renderInputs(tree, s) {
				if !argopath.AppFilesHaveChanged(refresh, []string{f}) {
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

// renderInputs are the repository-relative files a source's render reads:
// for a Helm chart, every file of the chart folder (templates may read any
// of them through .Files) except the value files of the chart's other
// Applications, which Helm reads only when named, plus the value files
// this source names; for a directory or Kustomize source, the files its
// render read.
func (v *validator) renderInputs(tree *apptree.Tree, s apptree.Source) []string {
	if s.Kind != "helm" {
		return s.Files
	}
	others := map[string]bool{}
	for _, n := range tree.Nodes {
		for _, o := range n.Sources {
			if o.Kind == "helm" && o.Dir == s.Dir {
				for _, f := range o.ValueFiles {
					others[f] = true
				}
			}
		}
	}
	own := map[string]bool{}
	for _, f := range s.ValueFiles {
		own[f] = true
	}
	var files []string
	root := filepath.Join(v.r.Root, filepath.FromSlash(s.Dir))
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(v.r.Root, p)
		if err != nil {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if others[rel] && !own[rel] {
			return nil
		}
		files = append(files, rel)
		return nil
	})
	for f := range own {
		if !strings.HasPrefix(f, s.Dir+"/") {
			files = append(files, path.Clean(f))
		}
	}
	sort.Strings(files)
	return files
}
