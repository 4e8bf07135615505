package promote

import (
	"context"
	"fmt"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/gitops-engine/pkg/health"
	"github.com/go-git/go-git/v5/plumbing"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tug-gitops/tug/internal/argocd"
	"github.com/tug-gitops/tug/internal/yamledit"
)

// Cluster is where the --from Application runs; nil skips the health gate.
type Cluster struct {
	Config *rest.Config
	// Namespace of Argo CD's Application objects (default: the
	// Application's metadata.namespace in the repository, else argocd).
	Namespace string
}

// fetchApplication reads the live Application object from the cluster.
func fetchApplication(ctx context.Context, c *Cluster, name, declaredNS string) (*v1alpha1.Application, error) {
	ns := c.Namespace
	if ns == "" {
		ns = declaredNS
	}
	if ns == "" {
		ns = argocd.Namespace
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	u, err := dyn.Resource(argocd.ApplicationsGVR).Namespace(ns).Get(ctx, name, v1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read Application %s/%s from the cluster: %w", ns, name, err)
	}
	var app v1alpha1.Application
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &app); err != nil {
		return nil, fmt.Errorf("decode Application %s/%s: %w", ns, name, err)
	}
	return &app, nil
}

// gateVerdict checks that the live --from Application is Synced and Healthy
// at a revision whose value file holds tag. It returns "" when the
// promotion may go ahead, else the reason it may not.
func gateVerdict(live *v1alpha1.Application, from envApp, key, tag string, c *clone) string {
	name := live.Name
	sync, hs := live.Status.Sync.Status, live.Status.Health.Status
	if sync != v1alpha1.SyncStatusCodeSynced || hs != health.HealthStatusHealthy {
		msg := fmt.Sprintf("%s is %s/%s, not Synced/Healthy", name, orUnknown(string(sync)), orUnknown(string(hs)))
		if live.Status.Health.Message != "" {
			msg += " (" + live.Status.Health.Message + ")"
		}
		return msg + "; wait for it (tug wait) or fix it before promoting"
	}
	rev := live.Status.Sync.Revision
	if rev == "" {
		return fmt.Sprintf("%s reports no synced revision", name)
	}
	if !plumbing.IsHash(rev) {
		return fmt.Sprintf("%s is synced at %q, which is not a git commit", name, rev)
	}
	data, err := c.fileAt(plumbing.NewHash(rev), from.ValueFile)
	if err != nil {
		return fmt.Sprintf("%s is synced at %s, but that commit cannot be read: %v", name, rev[:10], err)
	}
	got, err := yamledit.Get(data, key)
	if err != nil {
		return fmt.Sprintf("%s is synced at %s, where %s has no usable %s: %v", name, rev[:10], from.ValueFile, key, err)
	}
	if got.Value != tag {
		return fmt.Sprintf("%s is synced at %s, where %s:%d sets %s to %q, not %q: %s does not run that tag yet", name, rev[:10], from.ValueFile, got.Line, key, got.Value, tag, from.Env)
	}
	return ""
}

func orUnknown(s string) string {
	if s == "" {
		return "Unknown"
	}
	return s
}

// listPods lists the --from Application's pods: those labelled
// app.kubernetes.io/instance=<Helm release name> in its destination
// namespace, on the cluster the gate reads (Applications deploying to
// another cluster are not supported by the digest check).
func listPods(ctx context.Context, c *Cluster, from envApp) ([]corev1.Pod, string, error) {
	release := from.Name()
	if s := from.App.Spec.Source; s != nil && s.Helm != nil && s.Helm.ReleaseName != "" {
		release = s.Helm.ReleaseName
	}
	ns := from.App.Spec.Destination.Namespace
	sel := "app.kubernetes.io/instance=" + release
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, sel, err
	}
	list, err := cs.CoreV1().Pods(ns).List(ctx, v1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, sel, fmt.Errorf("list the pods of %s (%s in namespace %s): %w", from.Name(), sel, ns, err)
	}
	return list.Items, sel + " in namespace " + ns, nil
}

// runningPods drops pods that are going away or have finished.
func runningPods(pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}

// digestVerdict checks that every running pod of app runs digest: one of
// its containers reports an imageID ending in @digest (the content the
// runtime really started, whatever reference the pod spec names). It
// returns "" when they do, else what was seen.
func digestVerdict(pods []corev1.Pod, app, selector, digest string) string {
	running := runningPods(pods)
	if len(running) == 0 {
		return fmt.Sprintf("%s has no running pod (%s) to show it runs %s", app, selector, digest)
	}
	var wrong []string
	for _, p := range running {
		var ids []string
		ok := false
		for _, cs := range p.Status.ContainerStatuses {
			ok = ok || strings.HasSuffix(cs.ImageID, "@"+digest)
			ids = append(ids, fmt.Sprintf("%s=%q", cs.Name, cs.ImageID))
		}
		if !ok {
			if len(ids) == 0 {
				ids = []string{"no container status yet"}
			}
			wrong = append(wrong, fmt.Sprintf("pod %s runs %s", p.Name, strings.Join(ids, ", ")))
		}
	}
	if len(wrong) == 0 {
		return ""
	}
	return fmt.Sprintf("%s does not run %s everywhere: %s", app, digest, strings.Join(wrong, "; "))
}
