package validate

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/apptree"
	"github.com/tug-gitops/tug/internal/argocd"
	"github.com/tug-gitops/tug/internal/repo"
)

// checkManifest validates one rendered object against its schema.
func (v *validator) checkManifest(app *repo.Application, i int, o *unstructured.Unstructured) {
	if o.GetKind() == "" || o.GetAPIVersion() == "" {
		v.add(newFinding("manifest.schema", app.FieldPos(sourcePath(app, i)), "every manifest needs apiVersion and kind",
			"Application %s: rendered object %q has no apiVersion or kind", app.Describe(), o.GetName()))
		return
	}
	err := v.schemas.validate(o)
	var unknown errUnknownKind
	switch {
	case err == nil:
	case errors.As(err, &unknown):
		v.add(newFinding("manifest.unknown-kind", app.FieldPos(sourcePath(app, i)),
			"add the CRD to the repository, or check the apiVersion (removed API versions are not in Kubernetes 1.34)",
			"Application %s: %s %q: %v", app.Describe(), o.GetKind(), o.GetName(), err))
	default:
		v.add(newFinding("manifest.schema", app.FieldPos(sourcePath(app, i)), "fix the template or values that produce this field",
			"Application %s: %s %q: %v", app.Describe(), o.GetKind(), o.GetName(), err))
	}
}

func appKey(a *repo.Application) string {
	ns := a.Namespace
	if ns == "" {
		ns = argocd.Namespace
	}
	return ns + "/" + a.Name
}

// destKey is an Application's destination cluster and namespace.
func destKey(a *repo.Application) string {
	d := a.Spec.Destination
	return d.Server + "|" + d.Name + "|" + d.Namespace
}

// related reports whether a cross-Application rule applies to two
// Applications: they belong to one root's tree (Argo CD builds them
// together), both are roots (applied side by side), or they deploy to the
// same cluster and namespace. Children of separate roots (environment trees
// each applied to its own Argo CD) are otherwise not compared.
func related(a, b *apptree.Node) bool {
	return a.Root == b.Root || a.Parent == nil && b.Parent == nil || destKey(a.App) == destKey(b.App)
}

func (v *validator) checkDuplicateNames(tree *apptree.Tree) {
	seen := map[string][]*apptree.Node{}
	for _, n := range tree.Nodes {
		a := n.App
		if a.Name == "" {
			continue
		}
		k := appKey(a)
		for _, first := range seen[k] {
			if first.App == a || !related(first, n) {
				continue
			}
			v.add(newFinding("apps.duplicate-name", a.FieldPos("metadata.name"), "rename one of them",
				"Application %s in namespace %s is also declared at %s", a.Describe(), strings.Split(k, "/")[0], first.App.Pos))
			break
		}
		seen[k] = append(seen[k], n)
	}
}

// checkSharedResources finds objects two Applications would both manage.
func (v *validator) checkSharedResources(tree *apptree.Tree) {
	owner := map[string][]*apptree.Node{}
	for _, n := range tree.Nodes {
		mine := map[string]bool{}
		for _, o := range n.Objects() {
			gk := o.GroupVersionKind().GroupKind()
			ns := ""
			if v.schemas.namespaced(gk) {
				ns = o.GetNamespace()
				if ns == "" {
					ns = n.App.Spec.Destination.Namespace
				}
			}
			key := fmt.Sprintf("%s|%s|%s|%s|%s", n.App.Spec.Destination.Server+n.App.Spec.Destination.Name, gk.Group, gk.Kind, ns, o.GetName())
			if mine[key] {
				continue
			}
			mine[key] = true
			for _, first := range owner[key] {
				if first.App == n.App {
					continue
				}
				v.add(newFinding("apps.shared-resource", n.App.FieldPos("spec.destination"), "let exactly one Application own each resource",
					"Application %s and Application %s both manage %s %s", n.App.Describe(), first.App.Describe(), kindName(gk.Group, gk.Kind), path.Join(ns, o.GetName())))
				break
			}
			owner[key] = append(owner[key], n)
		}
	}
}

// checkReachability reports declared Applications inside an app-of-apps
// source directory that no root deploys (they are still checked, as roots).
func (v *validator) checkReachability(tree *apptree.Tree) {
	for _, n := range tree.Roots {
		if !n.Unreachable {
			continue
		}
		v.add(newFinding("apps.unreachable", n.App.FieldPos("metadata.name"),
			"check the parent Application's source path, directory.recurse and include/exclude",
			"Application %s is inside an app-of-apps source directory but no root deploys it", n.App.Describe()))
	}
}
