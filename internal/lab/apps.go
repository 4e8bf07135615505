package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/supervisor"
)

// waitApps waits until the root Application and every Application it
// manages are Synced and Healthy, with tug wait's own logic.
func (l *Lab) waitApps(ctx context.Context) error {
	cfg, err := l.restConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	res, err := appstatus.Wait(ctx, dyn, appstatus.WaitOptions{Namespace: ArgoCDNamespace, Apps: []string{"root"}, PollInterval: 200 * time.Millisecond})
	if err != nil {
		var b strings.Builder
		if res != nil {
			appstatus.WriteFailure(&b, res)
		}
		return fmt.Errorf("applications: %w\n%s--- application-controller log ---\n%s", err, b.String(), supervisor.LogTail(l.layout.Log("argocd-application-controller"), 20))
	}
	return nil
}
