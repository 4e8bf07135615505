package e2e

// GITOPS-005: the children are managed from the root Application.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tug-gitops/tug/internal/appstatus"
)

// Deleting a child Application makes root put it back (root syncs with
// selfHeal), and the child deploys again.
func TestAppOfAppsRecreatesDeletedChild(t *testing.T) {
	const child = "frontend-dev"
	mustTugWait(t, 2*time.Minute, "", "root")
	ctx := context.Background()
	apps := dynamicClient(t).Resource(appstatus.ApplicationGVR).Namespace(appstatus.DefaultNamespace)
	before, err := apps.Get(ctx, child, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := apps.Delete(ctx, child, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Minute, "root recreates "+child, func(ctx context.Context) error {
		a, err := apps.Get(ctx, child, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%s is gone", child)
		}
		if err != nil {
			return err
		}
		if a.GetUID() == before.GetUID() {
			return fmt.Errorf("%s not deleted yet (deletionTimestamp %v)", child, a.GetDeletionTimestamp())
		}
		return nil
	}, func() string { return appStatusTable(t) })
	t.Logf("root recreated %s after %.1fs", child, time.Since(start).Seconds())
	mustTugWait(t, 3*time.Minute, "", "root")
	t.Logf("%s Synced and Healthy again after %.1fs", child, time.Since(start).Seconds())
}

// A new Application file under infra/gitops/apps/ pushed to the forge
// becomes a new child of root; removing it again prunes the child and what
// it deployed.
func TestAppOfAppsNewChildFromGit(t *testing.T) {
	const name = "e2e-extra"
	files := map[string][]byte{
		"infra/gitops/apps/" + name + ".yaml":   childApplication(t, name, "e2e-fixtures/"+name),
		"e2e-fixtures/" + name + "/config.yaml": []byte(configMapFixture(name)),
	}
	added := forgeWriteFiles(t, "Add Application "+name, files)
	removed := false
	remove := func() string {
		removed = true
		return forgeWriteFiles(t, "Remove Application "+name, map[string][]byte{
			"infra/gitops/apps/" + name + ".yaml": nil, "e2e-fixtures/" + name + "/config.yaml": nil,
		})
	}
	t.Cleanup(func() {
		if !removed {
			remove()
		}
	})

	out := mustTugWait(t, 3*time.Minute, added, "root", name)
	t.Log(strings.TrimSpace(out))
	a, err := application(context.Background(), t, name)
	if err != nil || a == nil {
		t.Fatalf("Application %s: %v (not created)", name, err)
	}
	if !isChildOf(t, name, "root") {
		t.Errorf("%s is not listed among root's resources", name)
	}
	if _, err := clientset(t).CoreV1().ConfigMaps("shop-dev").Get(context.Background(), name, metav1.GetOptions{}); err != nil {
		t.Errorf("the new child did not deploy its ConfigMap: %v", err)
	}

	gone := remove()
	mustTugWait(t, 3*time.Minute, gone, "root")
	eventually(t, 2*time.Minute, name+" pruned with what it deployed", func(ctx context.Context) error {
		if a, err := application(ctx, t, name); err != nil || a != nil {
			return fmt.Errorf("Application %s still exists (err %v)", name, err)
		}
		_, err := clientset(t).CoreV1().ConfigMaps("shop-dev").Get(ctx, name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("ConfigMap shop-dev/%s still there (err %v)", name, err)
		}
		return nil
	}, func() string { return appStatusTable(t) })
}

// A child going Degraded makes root Degraded: infra/argocd's health check
// for Application resources reports each child's own health to its parent.
// The child deploys a Deployment that can never be scheduled (no node has
// its label) with a 5 s progress deadline: Kubernetes marks it
// ProgressDeadlineExceeded, which Argo CD assesses as Degraded. (Pods
// otherwise always become Ready under kwok.)
func TestAppOfAppsDegradedChildDegradesRoot(t *testing.T) {
	const name = "e2e-degraded"
	added := forgeWriteFiles(t, "Add Application "+name+" that cannot become healthy", map[string][]byte{
		"infra/gitops/apps/" + name + ".yaml":       childApplication(t, name, "e2e-fixtures/"+name),
		"e2e-fixtures/" + name + "/deployment.yaml": []byte(unschedulableDeployment(name)),
	})
	removed := false
	remove := func() string {
		removed = true
		return forgeWriteFiles(t, "Remove Application "+name, map[string][]byte{
			"infra/gitops/apps/" + name + ".yaml": nil, "e2e-fixtures/" + name + "/deployment.yaml": nil,
		})
	}
	t.Cleanup(func() {
		if !removed {
			mustTugWait(t, 3*time.Minute, remove(), "root")
		}
	})

	// tug wait gives up as soon as an app is Degraded at the revision, and
	// says which one and why.
	out, err := tugWait(t, 3*time.Minute, added, "root")
	t.Logf("tug wait root --revision %s:\n%s", added[:12], out)
	if err == nil {
		t.Fatalf("tug wait root succeeded with a Degraded child")
	}
	for _, want := range []string{"Degraded", name, "Deployment"} {
		if !strings.Contains(out, want) {
			t.Errorf("tug wait's failure report lacks %q", want)
		}
	}
	eventually(t, 2*time.Minute, "root Degraded", func(ctx context.Context) error {
		for _, n := range []string{name, "root"} {
			a, err := application(ctx, t, n)
			if err != nil || a == nil {
				return fmt.Errorf("%s: %v", n, err)
			}
			if a.Status.Health.Status != "Degraded" {
				return fmt.Errorf("%s is %s", n, a.Status.Health.Status)
			}
		}
		return nil
	}, func() string { return appStatusTable(t) })
	t.Logf("tug status with the Degraded child:\n%s", appStatusTable(t))

	gone := remove()
	mustTugWait(t, 3*time.Minute, gone, "root")
	a, err := application(context.Background(), t, "root")
	if err != nil || a == nil || a.Status.Health.Status != "Healthy" {
		t.Fatalf("root after removing %s: %v %v", name, a.Status.Health, err)
	}
}

// childApplication is an Application file like infra/gitops/apps/*.yaml:
// project shop, dev namespace, automated prune+selfHeal, cascade delete,
// and the given syncPolicy lines after automated (none, or a retry block).
func childApplication(t testing.TB, name, path string, policy ...string) []byte {
	var extra string
	for _, line := range policy {
		extra += "    " + line + "\n"
	}
	return []byte(fmt.Sprintf(`# Added by tug's end-to-end tests on the lab's forge only.
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: %s
  namespace: argocd
  finalizers:
    - resources-finalizer.argocd.argoproj.io
spec:
  project: shop
  source:
    repoURL: %s
    targetRevision: main
    path: %s
  destination:
    server: https://kubernetes.default.svc
    namespace: shop-dev
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
%s`, name, forgeRepoURL(t), path, extra))
}

func configMapFixture(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
data:
  from: tug e2e
`, name)
}

func unschedulableDeployment(name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: 1
  progressDeadlineSeconds: 5
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
    spec:
      nodeSelector:
        tug-e2e/no-such-node: "true"
      containers:
        - name: app
          image: registry.invalid/e2e:1
`, name)
}

// isChildOf reports whether parent lists Application child among the
// resources it manages.
func isChildOf(t *testing.T, child, parent string) bool {
	a, err := application(context.Background(), t, parent)
	if err != nil || a == nil {
		t.Fatalf("%s: %v", parent, err)
	}
	for _, n := range appstatus.ChildNames(a) {
		if n == child {
			return true
		}
	}
	return false
}
