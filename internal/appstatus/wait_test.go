package appstatus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
)

func unstructuredApp(t *testing.T, a v1alpha1.Application) *unstructured.Unstructured {
	t.Helper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&a)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion("argoproj.io/v1alpha1")
	u.SetKind("Application")
	return u
}

// Between reads Wait watches the Applications, so a status Argo CD writes
// ends the wait at once, not at the next poll: with a poll interval far
// longer than the test's deadline, only the watch can end it in time.
func TestWaitSeesAChangeAtOnceNotAtTheNextPoll(t *testing.T) {
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{ApplicationGVR: "ApplicationList"},
		unstructuredApp(t, app("backend-dev", "Synced", "Healthy", shaOld)))
	watching := make(chan struct{}, 16)
	dyn.PrependWatchReactor("applications", func(clienttesting.Action) (bool, watch.Interface, error) {
		watching <- struct{}{}
		return false, nil, nil // the fake's own watch serves it
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		res *WaitResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := Wait(ctx, dyn, WaitOptions{Apps: []string{"backend-dev"}, Revision: shaNew, PollInterval: time.Hour, RefreshInterval: time.Hour})
		done <- result{res, err}
	}()
	select {
	case <-watching:
	case r := <-done:
		t.Fatalf("Wait returned before the app reached the revision: %+v, %v", r.res, r.err)
	}
	synced := unstructuredApp(t, app("backend-dev", "Synced", "Healthy", shaNew))
	if _, err := dyn.Resource(ApplicationGVR).Namespace("argocd").Update(ctx, synced, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || !r.res.Ready {
		t.Fatalf("Wait after the app reached the revision: %+v, %v; want ready well before the hour-long poll", r.res, r.err)
	}
}

// A wait for a revision asks Argo CD to refresh only the apps that have not
// compared that revision yet: one already at it is syncing or rolling out,
// and a refresh would only make Argo CD fetch and compare it again.
func TestWaitRefreshesOnlyAppsBehindTheRevision(t *testing.T) {
	apps := []v1alpha1.Application{
		app("backend-dev", "OutOfSync", "Healthy", shaOld),   // behind: Argo CD has not seen shaNew
		app("backend-prod", "Synced", "Progressing", shaNew), // rolling out shaNew
		app("frontend-dev", "OutOfSync", "Healthy", shaNew),  // about to sync shaNew
		app("frontend-prod", "Synced", "Healthy", shaOld),    // behind
	}
	objs := make([]runtime.Object, len(apps))
	for i := range apps {
		objs[i] = unstructuredApp(t, apps[i])
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{ApplicationGVR: "ApplicationList"}, objs...)
	opts := WaitOptions{Namespace: "argocd", Apps: []string{"backend-dev", "backend-prod", "frontend-dev", "frontend-prod"}, Revision: shaNew, RefreshInterval: time.Hour}
	requestRefreshes(context.Background(), dyn, opts, apps, Evaluate(apps, opts), map[string]time.Time{})
	var patched []string
	for _, a := range dyn.Actions() {
		if p, ok := a.(clienttesting.PatchAction); ok {
			patched = append(patched, p.GetName())
		}
	}
	if strings.Join(patched, ",") != "backend-dev,frontend-prod" {
		t.Errorf("refresh requested for %v, want only the apps behind the revision: backend-dev, frontend-prod", patched)
	}

	// Without a revision every app that is not Ready is asked once, so that
	// Argo CD reads the branch's newest commit.
	dyn.ClearActions()
	opts.Revision = ""
	requestRefreshes(context.Background(), dyn, opts, apps, Evaluate(apps, opts), map[string]time.Time{})
	if n := len(dyn.Actions()); n != 3 {
		t.Errorf("without a revision: %d refresh requests, want 3 (every app that is not Synced and Healthy): %v", n, dyn.Actions())
	}
}
