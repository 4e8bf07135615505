// Package bootstrap installs Argo CD into a cluster the way this repository
// declares it (infra/argocd: the pinned upstream install plus hardening),
// secures access (admin off, generated operator password and deployer token)
// and hands the cluster to Git by applying the root Application
// (infra/gitops/root.yaml). The same code serves a real cluster and the lab.
package bootstrap

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tug-gitops/tug/internal/argocd"
	"github.com/tug-gitops/tug/internal/render"
)

// Namespace is where Argo CD runs and where its Applications live:
// argocd.Namespace, under the name this package's callers know.
const Namespace = argocd.Namespace

// Paths inside the repository.
const (
	InstallDir = "infra/argocd"
	RootFile   = "infra/gitops/root.yaml"
)

// Render builds infra/argocd with the kustomize API: the Argo CD install
// exactly as it would be applied.
func Render(repoRoot string) ([]*unstructured.Unstructured, error) {
	return render.Kustomize(filepath.Join(repoRoot, InstallDir))
}

// RenderRoot reads infra/gitops/root.yaml (the platform AppProject and the
// root Application). A non-empty repoURL replaces the Git URL of both, so
// the lab can point them at its own forge without editing the file.
func RenderRoot(repoRoot, repoURL string) ([]*unstructured.Unstructured, error) {
	path := filepath.Join(repoRoot, RootFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read root Application: %w", err)
	}
	objs, err := render.DecodeManifests(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, o := range objs {
		if repoURL != "" {
			if err := retarget(o, repoURL); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		if err := normalizeSources(o); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return objs, nil
}

// normalizeSources drops source-type blocks that hold only zero values
// (e.g. directory: {recurse: false}), as Argo CD's controller does to every
// Application it reconciles (util/argo NormalizeSource). Applying them
// as written would undo the controller's edit on every bootstrap: in the
// lab the second run reported root "configured" (spec.source.directory)
// although nothing had changed.
func normalizeSources(o *unstructured.Unstructured) error {
	if o.GetKind() != "Application" {
		return nil
	}
	var sources []map[string]any
	if m, ok, _ := unstructured.NestedMap(o.Object, "spec", "source"); ok {
		sources = append(sources, m)
	}
	list, _, _ := unstructured.NestedSlice(o.Object, "spec", "sources")
	for _, s := range list {
		if m, ok := s.(map[string]any); ok {
			sources = append(sources, m)
		}
	}
	for _, m := range sources {
		var src v1alpha1.ApplicationSource
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &src); err != nil {
			return fmt.Errorf("Application %s: source: %w", o.GetName(), err)
		}
		if src.Kustomize != nil && src.Kustomize.IsZero() {
			delete(m, "kustomize")
		}
		if src.Helm != nil && src.Helm.IsZero() {
			delete(m, "helm")
		}
		if d := src.Directory; d != nil && d.IsZero() {
			// Argo CD keeps include/exclude (globs with meaning even when
			// the rest is zero) and drops everything else.
			kept := map[string]any{}
			if d.Include != "" {
				kept["include"] = d.Include
			}
			if d.Exclude != "" {
				kept["exclude"] = d.Exclude
			}
			if len(kept) == 0 {
				delete(m, "directory")
			} else {
				m["directory"] = kept
			}
		}
	}
	if _, ok, _ := unstructured.NestedMap(o.Object, "spec", "source"); ok && len(sources) > 0 {
		if err := unstructured.SetNestedMap(o.Object, sources[0], "spec", "source"); err != nil {
			return err
		}
		sources = sources[1:]
	}
	if len(list) > 0 {
		out := make([]any, len(sources))
		for i, m := range sources {
			out[i] = m
		}
		return unstructured.SetNestedSlice(o.Object, out, "spec", "sources")
	}
	return nil
}

// retarget points an AppProject's sourceRepos or an Application's sources at
// repoURL.
func retarget(o *unstructured.Unstructured, repoURL string) error {
	switch o.GetKind() {
	case "AppProject":
		return unstructured.SetNestedStringSlice(o.Object, []string{repoURL}, "spec", "sourceRepos")
	case "Application":
		if _, ok, _ := unstructured.NestedMap(o.Object, "spec", "source"); ok {
			if err := unstructured.SetNestedField(o.Object, repoURL, "spec", "source", "repoURL"); err != nil {
				return err
			}
		}
		sources, ok, _ := unstructured.NestedSlice(o.Object, "spec", "sources")
		if ok {
			for _, s := range sources {
				if m, ok := s.(map[string]any); ok {
					m["repoURL"] = repoURL
				}
			}
			return unstructured.SetNestedSlice(o.Object, sources, "spec", "sources")
		}
	}
	return nil
}

// IsWorkload reports whether a rendered install object is one of Argo CD's
// workloads (Deployment, StatefulSet, Job): what runs as pods on a cluster,
// and as local processes in `tug lab`. Options.Exclude = IsWorkload applies
// everything else: CRDs, ConfigMaps, Secrets, RBAC, ServiceAccounts,
// Services.
func IsWorkload(obj *unstructured.Unstructured) bool {
	switch obj.GetKind() {
	case "Deployment", "StatefulSet", "Job":
		return true
	}
	return false
}

// namespaceObject is Namespace argocd: the upstream install assumes it exists.
func namespaceObject() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata":   map[string]any{"name": Namespace},
	}}
}

// AdminDisabled reports whether the rendered install's argocd-cm turns the
// built-in admin account off.
func AdminDisabled(objs []*unstructured.Unstructured) bool {
	data, _ := argocdCM(objs)
	return data["admin.enabled"] == "false"
}

// argocdCM returns the data of the rendered install's argocd-cm.
func argocdCM(objs []*unstructured.Unstructured) (data map[string]string, found bool) {
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetName() == "argocd-cm" {
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			return data, true
		}
	}
	return nil, false
}

// Objects returns what Run applies, in its two steps: the install (the
// argocd Namespace and the rendered infra/argocd, less what opts.Exclude
// drops) and the root objects (the projects SeedProjects seeds, then
// root.yaml's). An install without the hardening is refused.
func Objects(opts Options) (install, root []*unstructured.Unstructured, err error) {
	rendered := opts.Install
	if rendered == nil {
		if rendered, err = Render(opts.RepoRoot); err != nil {
			return nil, nil, err
		}
	}
	if err := CheckHardening(rendered); err != nil {
		return nil, nil, err
	}
	if root, err = RenderRoot(opts.RepoRoot, opts.RepoURL); err != nil {
		return nil, nil, err
	}
	seeds, err := SeedProjects(opts.RepoRoot, opts.RepoURL, root, rendered)
	if err != nil {
		return nil, nil, err
	}
	install = []*unstructured.Unstructured{namespaceObject()}
	for _, o := range rendered {
		if opts.Exclude == nil || !opts.Exclude(o) {
			install = append(install, o)
		}
	}
	return install, append(seeds, root...), nil
}

// Digest identifies sets of objects: the SHA-256 of their JSON, in order.
func Digest(sets ...[]*unstructured.Unstructured) (string, error) {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, objs := range sets {
		for _, o := range objs {
			if err := enc.Encode(o.Object); err != nil {
				return "", err
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
