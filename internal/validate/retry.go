package validate

import "github.com/tug-gitops/tug/internal/apptree"

// argoDefaultRetryLimit is how often Argo CD (v3.2) retries a failed
// automated sync when syncPolicy.retry is not set.
const argoDefaultRetryLimit = 5

// checkRetryRefresh warns about automated Applications whose failed syncs
// are retried at the commit that failed. While those retries run, Argo CD
// starts no other sync, so a fix or revert merged meanwhile waits until
// they run out: minutes with the usual backoff. syncPolicy.retry.refresh
// makes every retry sync the branch's latest commit instead.
func (v *validator) checkRetryRefresh(tree *apptree.Tree) {
	const hint = "set spec.syncPolicy.retry.refresh: true (Argo CD 3.2+) next to limit and backoff; " +
		"a retry block without limit turns retries off"
	for _, n := range tree.Nodes {
		a := n.App
		sp := a.Spec.SyncPolicy
		if sp == nil || !sp.IsAutomatedSyncEnabled() {
			continue
		}
		switch r := sp.Retry; {
		case r == nil:
			v.add(newFinding("apps.retry-default", a.FieldPos("spec.syncPolicy.automated"), hint,
				"Application %q syncs automatically with Argo CD's default retry (%d attempts, from 5 s doubling up to 3 min) of the commit that failed: "+
					"a fix merged meanwhile waits until the retries run out", a.Name, argoDefaultRetryLimit))
		case r.Limit != 0 && !r.Refresh:
			v.add(newFinding("apps.retry-no-refresh", a.FieldPos("spec.syncPolicy.retry"), hint,
				"Application %q retries a failed automated sync at the commit that failed (limit %d) without refresh: "+
					"a fix merged meanwhile waits until the retries run out", a.Name, r.Limit))
		}
	}
}
