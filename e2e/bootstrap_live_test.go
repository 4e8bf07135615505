package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tug-gitops/tug/internal/bootstrap"
	"github.com/tug-gitops/tug/internal/kube"
)

// A new user's `tug bootstrap` with the lab's context current (as `tug lab
// up` leaves it) and no flags: the lab is recognised, root stays on the
// lab's forge (root.yaml names github.com, unreachable from the lab), the
// workloads the lab runs as processes are not applied, the plan says both,
// and nothing changes.
func TestBootstrapWithoutFlagsOnTheLabKeepsItsSettings(t *testing.T) {
	ctx := context.Background()
	forgeURL := forgeRepoURL(t)
	// No --kubeconfig: the user's kubeconfig with the lab's context current.
	out, err := tugCmd(ctx, 3*time.Minute, "bootstrap", "-o", "json")
	if err != nil {
		t.Fatalf("tug bootstrap: %v\n%s", err, out)
	}
	for _, want := range []string{
		"Repository URL: " + forgeURL + ", kept from the live root Application",
		`Lab cluster (tug lab "` + env.name + `")`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan does not say %q:\n%s", want, out)
		}
	}
	rep := decodeBootstrapReport(t, out)
	if rep.RepoURL != forgeURL || rep.Lab != env.name {
		t.Errorf("report: repoURL %q lab %q, want %q and %q", rep.RepoURL, rep.Lab, forgeURL, env.name)
	}
	var changed []string
	for _, r := range append(append([]kube.Result{}, rep.Install...), rep.Root...) {
		if r.Action != kube.Unchanged {
			changed = append(changed, string(r.Action)+" "+r.Ref)
		}
		if strings.HasPrefix(r.Ref, "Deployment/") || strings.HasPrefix(r.Ref, "StatefulSet/") {
			t.Errorf("bootstrap on the lab applied %s, which the lab runs as a process", r.Ref)
		}
	}
	if len(changed) > 0 || len(rep.Credentials) > 0 {
		t.Errorf("tug bootstrap on the lab changed: %v %v", changed, rep.Credentials)
	}
	root, err := application(ctx, t, "root")
	if err != nil {
		t.Fatal(err)
	}
	if root.Spec.Source == nil || root.Spec.Source.RepoURL != forgeURL {
		t.Errorf("root tracks %+v after bootstrap, want %s", root.Spec.Source, forgeURL)
	}
	ns, err := clientset(t).CoreV1().Namespaces().Get(ctx, bootstrap.Namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Annotations[bootstrap.LabAnnotation] != env.name {
		t.Errorf("Namespace/%s annotations %v: the lab's mark is gone", bootstrap.Namespace, ns.Annotations)
	}
}
