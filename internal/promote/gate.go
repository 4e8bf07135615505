package promote

import (
	"context"
	"fmt"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/gitops-engine/pkg/health"
	"github.com/go-git/go-git/v5/plumbing"
	"k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
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
