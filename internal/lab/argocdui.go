package lab

import (
	"context"
	"os"

	"github.com/tug-gitops/tug/internal/tools"
)

// useArgoCDUI swaps the API-only argocd for one that serves Argo CD's web
// UI, building it on first use in the tool-build phase. The UI is a
// convenience: when it cannot be built (no Node, the npm registry down),
// the lab comes up with the API-only server and says why and how to fix it.
// TUG_LAB_NO_UI=1 skips it.
func (l *Lab) useArgoCDUI(ctx context.Context, bins map[tools.Tool]string) error {
	if os.Getenv("TUG_LAB_NO_UI") != "" {
		l.notice("Argo CD web UI off (TUG_LAB_NO_UI is set); argocd-server serves the API only")
		return nil
	}
	path, err := l.opts.Tools.EnsureArgoCDUI(ctx)
	if ctx.Err() != nil {
		return ctx.Err() // stopped while building: not a reason to fall back
	}
	if err != nil {
		l.opts.Log.Warn("argo cd runs without its web UI (API only)", "why", err)
		l.notice("Argo CD web UI not available, API only: " + err.Error())
		return nil
	}
	bins[tools.ArgoCD] = path
	l.argoUI = true
	return nil
}

func (l *Lab) notice(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status.Notices = append(l.status.Notices, msg)
}
