package validate

import (
	"fmt"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/repo"
)

// noProjectClusters answers Argo CD's project-scoped-cluster callback: a repo
// declares no project-scoped clusters.
func noProjectClusters(string) ([]*v1alpha1.Cluster, error) { return nil, nil }

// checkProject checks the project exists and permits the destination and
// every source, with Argo CD's own AppProject methods.
func (v *validator) checkProject(app *repo.Application, cluster *v1alpha1.Cluster) *repo.AppProject {
	name := app.Spec.Project
	if name == "" {
		return nil // reported by parse.schema
	}
	proj := v.r.Project(name)
	if proj == nil && name == "default" {
		proj = defaultProject()
	}
	if proj == nil {
		hint := "declare an AppProject named " + name + " or use an existing project"
		best, bestDist := "", 3
		for _, p := range v.r.Projects {
			if d := repo.EditDistance(name, p.Name); d < bestDist {
				best, bestDist = p.Name, d
			}
		}
		if best != "" {
			hint = fmt.Sprintf("did you mean %q?", best)
		}
		v.add(newFinding("project.missing", app.ValuePos(v.r.Root, "spec.project", name), hint, "Application %s: AppProject %q not found", app.Describe(), name))
		return nil
	}
	if cluster != nil {
		ok, err := proj.IsDestinationPermitted(cluster, app.Spec.Destination.Namespace, noProjectClusters)
		if err != nil || !ok {
			v.add(newFinding("project.destination-denied", app.FieldPos("spec.destination"), destinationsHint(proj),
				"Application %s: destination {%s %s} is not permitted in project %q", app.Describe(), cluster.Server, app.Spec.Destination.Namespace, proj.Name))
		}
	}
	for i, src := range app.Spec.GetSources() {
		if src.RepoURL != "" && !proj.IsSourcePermitted(src) {
			v.add(newFinding("project.source-denied", app.FieldPos(sourcePath(app, i)+".repoURL"),
				fmt.Sprintf("project %q allows sourceRepos %v", proj.Name, proj.Spec.SourceRepos),
				"Application %s: source repository %q is not permitted in project %q", app.Describe(), src.RepoURL, proj.Name))
		}
	}
	return proj
}

func destinationsHint(p *repo.AppProject) string {
	var ds []string
	for _, d := range p.Spec.Destinations {
		target := d.Server
		if target == "" {
			target = "name=" + d.Name
		}
		ds = append(ds, fmt.Sprintf("{%s %s}", target, d.Namespace))
	}
	return fmt.Sprintf("project %q allows destinations %s", p.Name, strings.Join(ds, ", "))
}

// checkResourcePermitted applies the project's resource whitelists and
// blacklists, and checks a namespaced object's own namespace as a
// destination, exactly as Argo CD's IsResourcePermitted does at sync.
func (v *validator) checkResourcePermitted(app *repo.Application, i int, proj *repo.AppProject, cluster *v1alpha1.Cluster, o *unstructured.Unstructured) {
	gk := o.GroupVersionKind().GroupKind()
	if gk.Kind == "" {
		return
	}
	namespaced := v.schemas.namespaced(gk)
	ns := ""
	if namespaced {
		ns = o.GetNamespace()
		if ns == "" {
			ns = app.Spec.Destination.Namespace
		}
	}
	if !proj.IsGroupKindPermitted(gk, namespaced) {
		scope := "cluster"
		if namespaced {
			scope = "namespace"
		}
		v.add(newFinding("project.kind-denied", app.FieldPos(sourcePath(app, i)),
			fmt.Sprintf("add {group: %q, kind: %s} to project %q's %sResourceWhitelist, or remove the resource", gk.Group, gk.Kind, proj.Name, scope),
			"Application %s: %s %q (%s-scoped) is not permitted in project %q", app.Describe(), kindName(gk.Group, gk.Kind), o.GetName(), scope, proj.Name))
		return
	}
	if namespaced && cluster != nil && ns != app.Spec.Destination.Namespace {
		ok, err := proj.IsDestinationPermitted(cluster, ns, noProjectClusters)
		if err != nil || !ok {
			v.add(newFinding("project.destination-denied", app.FieldPos(sourcePath(app, i)), destinationsHint(proj),
				"Application %s: %s %q goes to namespace %q, which project %q does not permit", app.Describe(), gk.Kind, o.GetName(), ns, proj.Name))
		}
	}
}

func kindName(group, kind string) string {
	if group == "" {
		return kind
	}
	return kind + "." + group
}
