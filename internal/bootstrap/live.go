package bootstrap

import (
	"context"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/argocd"
	"github.com/tug-gitops/tug/internal/kube"
)

// LabAnnotation on the argocd Namespace marks a cluster run by `tug lab`;
// its value is the lab's name. Bootstrap writes it when Options.Lab is set
// (the lab sets it) and, finding it, bootstraps the way the lab does: Argo
// CD's workloads are lab processes, not pods, so they are not applied.
const LabAnnotation = "tug-gitops.github.io/lab"

// live is what Run learns from the cluster before it plans.
type live struct {
	// rootRepoURL is the Git URL the live root Application tracks ("": no
	// root Application yet).
	rootRepoURL string
	// lab is the name of the tug lab running this cluster ("": not a lab).
	lab string
}

// readLive reads the live root Application (named as in root.yaml) and the
// argocd Namespace's lab mark. Nothing there yet is a fresh cluster.
func readLive(ctx context.Context, c *kube.Client, root []*unstructured.Unstructured) (live, error) {
	var l live
	ns, err := c.Typed.CoreV1().Namespaces().Get(ctx, Namespace, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return l, nil // nothing of Argo CD here yet, so no root either
	case err != nil:
		return l, fmt.Errorf("read Namespace/%s: %w", Namespace, err)
	}
	l.lab = ns.Annotations[LabAnnotation]
	app := rootApplication(root)
	if app == nil {
		return l, nil
	}
	appNS := app.GetNamespace()
	if appNS == "" {
		appNS = argocd.Namespace
	}
	u, err := c.Dynamic.Resource(argocd.ApplicationsGVR).Namespace(appNS).Get(ctx, app.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err): // no root yet, or no Application CRD yet
		return l, nil
	case err != nil:
		return l, fmt.Errorf("read the live root Application %s/%s: %w", appNS, app.GetName(), err)
	}
	l.rootRepoURL = sourceRepoURL(u)
	return l, nil
}

// rootApplication is root.yaml's Application.
func rootApplication(root []*unstructured.Unstructured) *unstructured.Unstructured {
	for _, o := range root {
		if o.GetKind() == "Application" {
			return o
		}
	}
	return nil
}

// sourceRepoURL is an Application's Git URL: spec.source.repoURL, else the
// first of spec.sources.
func sourceRepoURL(app *unstructured.Unstructured) string {
	if u, ok, _ := unstructured.NestedString(app.Object, "spec", "source", "repoURL"); ok && u != "" {
		return u
	}
	sources, _, _ := unstructured.NestedSlice(app.Object, "spec", "sources")
	for _, s := range sources {
		if m, ok := s.(map[string]any); ok {
			if u, _ := m["repoURL"].(string); u != "" {
				return u
			}
		}
	}
	return ""
}

// adoptLive settles opts from what the cluster already runs, saying so on
// out. Without --repo-url, a root that tracks another URL than root.yaml
// keeps it: bootstrap again changes nothing, and a lab's root (pointed at
// its own forge) is not repointed at a URL the lab cannot reach. On a lab
// cluster the workloads are skipped, as the lab's own bootstrap does.
func adoptLive(opts *Options, l live, fileURL string, out io.Writer) {
	if l.lab != "" {
		if opts.Lab == "" {
			opts.Lab = l.lab
		}
		if opts.Exclude == nil && !opts.Workloads {
			opts.Exclude = IsWorkload
			fmt.Fprintf(out, "Lab cluster (tug lab %q): Argo CD's Deployments, StatefulSets and Jobs run as lab processes, so they are not applied (as with --skip-workloads; --skip-workloads=false applies them).\n", l.lab)
		}
	}
	switch {
	case opts.RepoURL != "" && l.rootRepoURL != "" && opts.RepoURL != l.rootRepoURL:
		fmt.Fprintf(out, "Repository URL: %s (--repo-url; the live root tracks %s)\n", opts.RepoURL, l.rootRepoURL)
	case opts.RepoURL == "" && l.rootRepoURL != "" && l.rootRepoURL != fileURL:
		opts.RepoURL = l.rootRepoURL
		fmt.Fprintf(out, "Repository URL: %s, kept from the live root Application (%s says %s; --repo-url changes it)\n", l.rootRepoURL, RootFile, fileURL)
	}
}
