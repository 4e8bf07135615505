package validate

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/argocd"
	"github.com/tug-gitops/tug/internal/repo"
)

// checkManifest validates one rendered object against its schema.
func (v *validator) checkManifest(app *repo.Application, i int, o *unstructured.Unstructured) {
	if o.GetKind() == "" || o.GetAPIVersion() == "" {
		v.add(newFinding("manifest.schema", app.FieldPos(sourcePath(app, i)), "every manifest needs apiVersion and kind",
			"Application %q: rendered object %q has no apiVersion or kind", app.Name, o.GetName()))
		return
	}
	err := v.schemas.validate(o)
	var unknown errUnknownKind
	switch {
	case err == nil:
	case errors.As(err, &unknown):
		v.add(newFinding("manifest.unknown-kind", app.FieldPos(sourcePath(app, i)),
			"add the CRD to the repository, or check the apiVersion (removed API versions are not in Kubernetes 1.34)",
			"Application %q: %s %q: %v", app.Name, o.GetKind(), o.GetName(), err))
	default:
		v.add(newFinding("manifest.schema", app.FieldPos(sourcePath(app, i)), "fix the template or values that produce this field",
			"Application %q: %s %q: %v", app.Name, o.GetKind(), o.GetName(), err))
	}
}

func appKey(a *repo.Application) string {
	ns := a.Namespace
	if ns == "" {
		ns = argocd.Namespace
	}
	return ns + "/" + a.Name
}

func (v *validator) checkDuplicateNames() {
	seen := map[string]*repo.Application{}
	for _, a := range v.r.Applications {
		if a.Name == "" {
			continue
		}
		k := appKey(a)
		if first, ok := seen[k]; ok {
			v.add(newFinding("apps.duplicate-name", a.FieldPos("metadata.name"), "rename one of them",
				"Application %q in namespace %s is also declared at %s", a.Name, strings.Split(k, "/")[0], first.Pos))
			continue
		}
		seen[k] = a
	}
}

// checkSharedResources finds objects two Applications would both manage.
func (v *validator) checkSharedResources(rendered []*renderedApp) {
	owner := map[string]*repo.Application{}
	for _, ra := range rendered {
		if ra == nil {
			continue
		}
		mine := map[string]bool{}
		for _, o := range ra.objects {
			gk := o.GroupVersionKind().GroupKind()
			ns := ""
			if v.schemas.namespaced(gk) {
				ns = o.GetNamespace()
				if ns == "" {
					ns = ra.app.Spec.Destination.Namespace
				}
			}
			key := fmt.Sprintf("%s|%s|%s|%s|%s", ra.app.Spec.Destination.Server+ra.app.Spec.Destination.Name, gk.Group, gk.Kind, ns, o.GetName())
			if mine[key] {
				continue
			}
			mine[key] = true
			if first, ok := owner[key]; ok && first != ra.app {
				v.add(newFinding("apps.shared-resource", ra.app.FieldPos("spec.destination"), "let exactly one Application own each resource",
					"Application %q and Application %q both manage %s %s", ra.app.Name, first.Name, kindName(gk.Group, gk.Kind), path.Join(ns, o.GetName())))
				continue
			}
			owner[key] = ra.app
		}
	}
}

// checkReachability follows app-of-apps from the roots: Applications whose
// file is inside no other Application's source directory.
func (v *validator) checkReachability(rendered []*renderedApp) {
	var dirs []string
	for _, ra := range rendered {
		if ra != nil {
			dirs = append(dirs, ra.dirs...)
		}
	}
	declaredIn := func(a *repo.Application) bool {
		for _, d := range dirs {
			if d == "." || strings.HasPrefix(a.Pos.File, d+"/") {
				return true
			}
		}
		return false
	}
	byKey := map[string]*renderedApp{}
	for _, ra := range rendered {
		if ra != nil {
			byKey[appKey(ra.app)] = ra
		}
	}
	reached := map[*repo.Application]bool{}
	var queue []*renderedApp
	for _, ra := range rendered {
		if ra != nil && !declaredIn(ra.app) { // for generated apps Pos is the ApplicationSet's
			reached[ra.app] = true
			queue = append(queue, ra)
		}
	}
	for len(queue) > 0 {
		ra := queue[0]
		queue = queue[1:]
		for _, o := range ra.objects {
			if o.GetAPIVersion() != "argoproj.io/v1alpha1" {
				continue
			}
			switch o.GetKind() {
			case "Application":
				ns := o.GetNamespace()
				if ns == "" {
					ns = ra.app.Spec.Destination.Namespace
				}
				if child, ok := byKey[ns+"/"+o.GetName()]; ok && !reached[child.app] {
					reached[child.app] = true
					queue = append(queue, child)
				}
			case "ApplicationSet":
				for _, c := range rendered {
					if c != nil && c.app.GeneratedBy != nil && c.app.GeneratedBy.Name == o.GetName() && !reached[c.app] {
						reached[c.app] = true
						queue = append(queue, c)
					}
				}
			}
		}
	}
	for _, ra := range rendered {
		if ra == nil || reached[ra.app] {
			continue
		}
		v.add(newFinding("apps.unreachable", ra.app.FieldPos("metadata.name"),
			"check the parent Application's source path, directory.recurse and include/exclude",
			"Application %q is inside an app-of-apps source directory but no root deploys it", ra.app.Name))
	}
}
