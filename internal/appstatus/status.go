// Package appstatus reads Argo CD Applications through the Kubernetes API
// (no Argo CD token needed), arranges them as the app-of-apps tree they
// form, and waits for them to be Synced and Healthy at a Git revision.
package appstatus

import (
	"context"
	"fmt"
	"sort"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/tug-gitops/tug/internal/argocd"
)

// DefaultNamespace is where Argo CD keeps Applications: argocd.Namespace,
// under the name this package's callers know.
const DefaultNamespace = argocd.Namespace

// ApplicationGVR is the Application resource: argocd.ApplicationsGVR.
var ApplicationGVR = argocd.ApplicationsGVR

// List reads every Application in namespace.
func List(ctx context.Context, dyn dynamic.Interface, namespace string) ([]v1alpha1.Application, error) {
	apps, _, err := listAt(ctx, dyn, namespace)
	return apps, err
}

// listAt is List, with the list's resource version: a watch from it sees
// every change made after the list.
func listAt(ctx context.Context, dyn dynamic.Interface, namespace string) ([]v1alpha1.Application, string, error) {
	list, err := dyn.Resource(ApplicationGVR).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("list Applications in namespace %s (is Argo CD installed? tug bootstrap installs it): %w", namespace, err)
	}
	apps := make([]v1alpha1.Application, 0, len(list.Items))
	for i := range list.Items {
		var app v1alpha1.Application
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &app); err != nil {
			return nil, "", fmt.Errorf("Application %s: %w", list.Items[i].GetName(), err)
		}
		apps = append(apps, app)
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	return apps, list.GetResourceVersion(), nil
}

// App is the summary of one Application that status and wait report.
type App struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Project   string `json:"project"`
	Sync      string `json:"sync"`
	Health    string `json:"health"`
	// Revision is the commit (or chart version) Argo CD last compared to;
	// Revisions has one per source for multi-source apps.
	Revision  string   `json:"revision,omitempty"`
	Revisions []string `json:"revisions,omitempty"`
	RepoURLs  []string `json:"repoURLs,omitempty"`
	Operation string   `json:"operation,omitempty"` // phase of the last/current sync operation
	OpMessage string   `json:"operationMessage,omitempty"`
	// Op is that operation in full: its revision, retries and message.
	Op         *Op         `json:"operationState,omitempty"`
	Conditions []Condition `json:"conditions,omitempty"`
	// Unhealthy lists managed resources that are not Healthy or not Synced.
	Unhealthy []Resource `json:"unhealthy,omitempty"`
	Children  []*App     `json:"children,omitempty"`
}

// Condition is an Application condition such as InvalidSpecError.
type Condition struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Resource is a managed resource that needs attention.
type Resource struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Sync      string `json:"sync,omitempty"`
	Health    string `json:"health,omitempty"`
	Message   string `json:"message,omitempty"`
}

func (r Resource) String() string {
	ref := r.Kind + "/" + r.Name
	if r.Namespace != "" {
		ref = r.Kind + "/" + r.Namespace + "/" + r.Name
	}
	s := ref + ": " + r.Sync
	if r.Health != "" {
		s += "/" + r.Health
	}
	if r.Message != "" {
		s += " (" + r.Message + ")"
	}
	return s
}

// Summarize turns an Application into an App (without children).
func Summarize(a *v1alpha1.Application) *App {
	out := &App{
		Name:      a.Name,
		Namespace: a.Namespace,
		Project:   a.Spec.GetProject(),
		Sync:      string(a.Status.Sync.Status),
		Health:    string(a.Status.Health.Status),
		Revision:  a.Status.Sync.Revision,
		Revisions: a.Status.Sync.Revisions,
	}
	if out.Sync == "" {
		out.Sync = "Unknown"
	}
	if out.Health == "" {
		out.Health = "Unknown"
	}
	for _, s := range a.Spec.GetSources() {
		out.RepoURLs = append(out.RepoURLs, s.RepoURL)
	}
	if op := a.Status.OperationState; op != nil {
		out.Operation = string(op.Phase)
		out.OpMessage = op.Message
	}
	out.Op = operationOf(a)
	for _, c := range a.Status.Conditions {
		out.Conditions = append(out.Conditions, Condition{Type: c.Type, Message: c.Message})
	}
	for _, r := range a.Status.Resources {
		res := Resource{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, Sync: string(r.Status)}
		if r.Health != nil {
			res.Health, res.Message = string(r.Health.Status), r.Health.Message
		}
		if (r.Health != nil && r.Health.Status != "Healthy") || (r.Status != "" && r.Status != v1alpha1.SyncStatusCodeSynced) {
			out.Unhealthy = append(out.Unhealthy, res)
		}
	}
	return out
}

// ChildNames returns the Applications an Application manages, read from its
// status.resources (an app-of-apps lists its children there).
func ChildNames(a *v1alpha1.Application) []string {
	var out []string
	for _, r := range a.Status.Resources {
		if r.Group == "argoproj.io" && r.Kind == "Application" && (r.Namespace == "" || r.Namespace == a.Namespace) {
			out = append(out, r.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Tree arranges apps as app-of-apps trees: an Application listed in another's
// status.resources appears under it, the rest are top-level. A child whose
// Application object does not exist (yet) is shown as Missing.
func Tree(apps []v1alpha1.Application) []*App {
	byName := map[string]*v1alpha1.Application{}
	for i := range apps {
		byName[apps[i].Name] = &apps[i]
	}
	isChild := map[string]bool{}
	for i := range apps {
		for _, c := range ChildNames(&apps[i]) {
			if c != apps[i].Name {
				isChild[c] = true
			}
		}
	}
	var roots []*App
	for i := range apps {
		if !isChild[apps[i].Name] {
			roots = append(roots, build(&apps[i], byName, map[string]bool{}))
		}
	}
	// Children of each other only (a cycle): show them top-level anyway.
	shown := map[string]bool{}
	var mark func(*App)
	mark = func(a *App) {
		shown[a.Name] = true
		for _, c := range a.Children {
			mark(c)
		}
	}
	for _, r := range roots {
		mark(r)
	}
	for i := range apps {
		if !shown[apps[i].Name] {
			r := build(&apps[i], byName, map[string]bool{})
			mark(r)
			roots = append(roots, r)
		}
	}
	return roots
}

func build(a *v1alpha1.Application, byName map[string]*v1alpha1.Application, path map[string]bool) *App {
	out := Summarize(a)
	path[a.Name] = true
	defer delete(path, a.Name)
	for _, name := range ChildNames(a) {
		if path[name] {
			continue // cycle
		}
		child, ok := byName[name]
		if !ok {
			out.Children = append(out.Children, &App{Name: name, Namespace: a.Namespace, Sync: "Unknown", Health: "Missing"})
			continue
		}
		out.Children = append(out.Children, build(child, byName, path))
	}
	return out
}

// Flatten lists a tree depth-first, parents before children.
func Flatten(trees []*App) []*App {
	var out []*App
	var walk func(*App)
	walk = func(a *App) {
		out = append(out, a)
		for _, c := range a.Children {
			walk(c)
		}
	}
	for _, t := range trees {
		walk(t)
	}
	return out
}

// ShortRevision abbreviates a commit SHA to 7 characters and leaves other
// revisions (chart versions, branch names) alone.
func ShortRevision(rev string) string {
	if len(rev) == 40 && isHex(rev) {
		return rev[:7]
	}
	return rev
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

var metav1PatchOptions = metav1.PatchOptions{FieldManager: "tug"}
