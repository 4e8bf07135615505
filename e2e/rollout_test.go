package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// A rolling update refuses no connection: the old pod drains after SIGTERM
// (it still accepts while kube-proxy takes it out of the Service's rules)
// and kube-proxy applies the change at once. Connections are opened anew
// for every request, from the host to the Service's cluster address, so
// each one is routed by kube-proxy's rules as they are at that moment.
// The Deployment is the backend chart's own, in a namespace of the test's,
// so no Argo CD application is disturbed.
func TestRealNodeRolloutRefusesNoConnection(t *testing.T) {
	needRealNode(t)
	ctx := context.Background()
	cs := clientset(t)
	chart, err := cs.AppsV1().Deployments("shop-dev").Get(ctx, "backend", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("e2e-rollout-%d", time.Now().UnixNano()%1e6)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	labels := map[string]string{"app": "rollout"}
	spec := chart.Spec.DeepCopy()
	spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
	spec.Template.Labels = labels
	spec.Template.Spec.ServiceAccountName = ""
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "backend"}, Spec: *spec}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "backend"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "8080") + "/api/info"
	oneConnectionEach := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := oneConnectionEach.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s answered %s", url, resp.Status)
		}
		return nil
	}
	eventually(t, 2*time.Minute, "the test's backend answers through its Service", get, nil)

	// Ask through new connections, as fast as they are answered, from just
	// before the restart until the old pod is gone.
	hammer, stop := context.WithCancel(ctx)
	var (
		mu       sync.Mutex
		asked    int
		failures []string
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for hammer.Err() == nil {
			err := get(hammer)
			if hammer.Err() != nil {
				return
			}
			mu.Lock()
			asked++
			if err != nil {
				failures = append(failures, time.Now().Format("15:04:05.000")+" "+err.Error())
			}
			mu.Unlock()
		}
	}()
	defer func() { stop(); wg.Wait() }()

	old, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=rollout"})
	if err != nil || len(old.Items) == 0 {
		t.Fatalf("the test's backend pods: %v, %v", old, err)
	}
	restart := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, "backend", types.StrategicMergePatchType, []byte(restart), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var seen string
	eventually(t, 2*time.Minute, "the rollout done and the old pods gone", func(ctx context.Context) error {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=rollout"})
		if err != nil {
			return err
		}
		seen = ""
		for _, p := range pods.Items {
			seen += fmt.Sprintf("%s %s deleting=%t\n", p.Name, p.Status.Phase, p.DeletionTimestamp != nil)
		}
		for _, o := range old.Items {
			for _, p := range pods.Items {
				if p.UID == o.UID {
					return fmt.Errorf("old pod %s is still there", o.Name)
				}
			}
		}
		return nil
	}, func() string { return seen })
	stop()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests through new connections failed during the rollout:\n%s", len(failures), asked, strings.Join(failures, "\n"))
	}
	if asked < 50 {
		t.Fatalf("only %d requests were made during the rollout; too few to show anything", asked)
	}
	t.Logf("%d requests through new connections during the rollout, none failed", asked)
}
