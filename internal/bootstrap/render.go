// Package bootstrap installs Argo CD into a cluster the way this repository
// declares it (infra/argocd: the pinned upstream install plus hardening),
// secures access (admin off, generated operator password and deployer token)
// and hands the cluster to Git by applying the root Application
// (infra/gitops/root.yaml). The same code serves a real cluster and the lab.
package bootstrap

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/render"
)

// Namespace is where Argo CD runs and where its Applications live.
const Namespace = "argocd"

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
	if repoURL != "" {
		for _, o := range objs {
			if err := retarget(o, repoURL); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	return objs, nil
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
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetName() == "argocd-cm" {
			v, _, _ := unstructured.NestedString(o.Object, "data", "admin.enabled")
			return v == "false"
		}
	}
	return false
}
