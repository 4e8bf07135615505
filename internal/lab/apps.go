package lab

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var applicationsGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}

// waitApps waits until the root Application and every Application it
// creates are Synced and Healthy.
func (l *Lab) waitApps(ctx context.Context) error {
	cfg, err := l.RESTConfig()
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var last string
	err = poll(ctx, 3*time.Minute, func() error {
		list, err := dyn.Resource(applicationsGVR).Namespace(ArgoCDNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var pending []string
		for _, app := range list.Items {
			sync, _, _ := unstructured.NestedString(app.Object, "status", "sync", "status")
			health, _, _ := unstructured.NestedString(app.Object, "status", "health", "status")
			if sync != "Synced" || health != "Healthy" {
				pending = append(pending, fmt.Sprintf("%s (%s/%s)", app.GetName(), or(sync, "?"), or(health, "?")))
			}
		}
		sort.Strings(pending)
		last = strings.Join(pending, ", ")
		if len(list.Items) < 2 {
			return fmt.Errorf("waiting for the root Application to create its children (%d Applications so far)", len(list.Items))
		}
		if len(pending) > 0 {
			return fmt.Errorf("not yet Synced and Healthy: %s", last)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("applications: %w\n--- application-controller log ---\n%s", err, logTail(l.logPath("argocd-application-controller"), 20))
	}
	return nil
}

func (l *Lab) logPath(component string) string {
	return l.dir + "/logs/" + component + ".log"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
