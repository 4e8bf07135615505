package bootstrap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/render"
)

// TrackingAnnotation is where Argo CD (annotation tracking, the v3 default)
// records which Application a resource belongs to.
const TrackingAnnotation = "argocd.argoproj.io/tracking-id"

// SeedProjects returns the AppProjects that root's Applications deploy from
// plain directories of this repository, each already marked as its root
// Application's own (Argo CD's tracking annotation, in Argo CD's format).
//
// Why: an Application must never reach the controller before its project
// (it would be marked InvalidSpecError until the next resync), so the shop
// project sits in sync wave -1 — and Argo CD pauses 2 s between waves
// (ARGOCD_SYNC_WAVE_DELAY). Applied before the root Application, with the
// root's tracking id, the project is already Synced when the root first
// syncs, and the root's ApplyOutOfSyncOnly=true leaves nothing in wave -1 to
// wait after. A project added later still goes through its wave as usual.
//
// Only the simple case is seeded: a single directory source (recurse
// honoured, no include/exclude, no Helm or Kustomize), annotation tracking
// and no installation ID in argocd-cm. Anything else yields no seeds and
// Argo CD's ordinary wave ordering does the work, only 2 s slower.
func SeedProjects(repoRoot, repoURL string, root, install []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	if !annotationTracking(install) {
		return nil, nil
	}
	var seeds []*unstructured.Unstructured
	for _, app := range root {
		if app.GetKind() != "Application" {
			continue
		}
		dir, recurse, ok := plainDirectory(app)
		if !ok {
			continue
		}
		projects, err := projectsIn(filepath.Join(repoRoot, filepath.FromSlash(dir)), recurse)
		if err != nil {
			return nil, err
		}
		destNS, _, _ := unstructured.NestedString(app.Object, "spec", "destination", "namespace")
		for _, p := range projects {
			if p.GetNamespace() == "" {
				p.SetNamespace(destNS)
			}
			if repoURL != "" {
				if err := retarget(p, repoURL); err != nil {
					return nil, err
				}
			}
			ann := p.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann[TrackingAnnotation] = trackingID(app.GetName(), p)
			p.SetAnnotations(ann)
			seeds = append(seeds, p)
		}
	}
	return seeds, nil
}

// trackingID is Argo CD's annotation value for obj managed by app:
// <app>:<group>/<kind>:<namespace>/<name> (util/argo BuildAppInstanceValue;
// a test compares the two).
func trackingID(app string, obj *unstructured.Unstructured) string {
	gvk := obj.GroupVersionKind()
	return fmt.Sprintf("%s:%s/%s:%s/%s", app, gvk.Group, gvk.Kind, obj.GetNamespace(), obj.GetName())
}

// annotationTracking reports whether the install's argocd-cm leaves Argo
// CD tracking resources by annotation alone, with no installation ID.
func annotationTracking(install []*unstructured.Unstructured) bool {
	data, _ := argocdCM(install)
	if m := data["application.resourceTrackingMethod"]; m != "" && m != "annotation" {
		return false
	}
	return data["installationID"] == ""
}

// plainDirectory returns the repository path of an Application's single
// directory source.
func plainDirectory(app *unstructured.Unstructured) (dir string, recurse, ok bool) {
	src, found, _ := unstructured.NestedMap(app.Object, "spec", "source")
	if !found {
		return "", false, false
	}
	dir, _ = src["path"].(string)
	if dir == "" || filepath.IsAbs(dir) || strings.Contains(dir, "..") {
		return "", false, false
	}
	for _, other := range []string{"helm", "kustomize", "plugin", "chart"} {
		if _, set := src[other]; set {
			return "", false, false
		}
	}
	if d, set := src["directory"].(map[string]any); set {
		if d["include"] != nil || d["exclude"] != nil || d["jsonnet"] != nil {
			return "", false, false
		}
		recurse, _ = d["recurse"].(bool)
	}
	return filepath.ToSlash(filepath.Clean(dir)), recurse, true
}

// projectsIn decodes the AppProjects among the manifests Argo CD would read
// from dir (*.yaml, *.yml, *.json; subdirectories only with recurse).
func projectsIn(dir string, recurse bool) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && !recurse {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		objs, err := render.DecodeManifests(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, o := range objs {
			if o.GetKind() == "AppProject" && o.GroupVersionKind().Group == "argoproj.io" {
				out = append(out, o)
			}
		}
		return nil
	})
	return out, err
}
