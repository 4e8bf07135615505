package promote

import (
	"context"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/argocd"
)

// Wait is where and how long to wait for the merged promotion to be
// deployed: the --to Application Synced and Healthy at the merge commit,
// as tug wait --revision checks it. Waiting for the revision matters: right
// after a merge the app is still Synced and Healthy at the old commit.
type Wait struct {
	Config *rest.Config
	// Namespace of the Application (default: its declared
	// metadata.namespace, else argocd).
	Namespace string
	Timeout   time.Duration
	// Progress receives a line whenever the app's state changes (nil: none).
	Progress io.Writer
}

func (w *Wait) run(ctx context.Context, app, declaredNS, commit string) (*appstatus.WaitResult, error) {
	ns := w.Namespace
	if ns == "" {
		ns = declaredNS
	}
	if ns == "" {
		ns = argocd.Namespace
	}
	dyn, err := dynamic.NewForConfig(w.Config)
	if err != nil {
		return nil, err
	}
	if w.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.Timeout)
		defer cancel()
	}
	res, err := appstatus.Wait(ctx, dyn, appstatus.WaitOptions{Namespace: ns, Apps: []string{app}, Revision: commit, Progress: w.Progress})
	if err != nil {
		return res, fmt.Errorf("merged as %s, but %s is not deployed: %w", appstatus.ShortRevision(commit), app, err)
	}
	return res, nil
}
