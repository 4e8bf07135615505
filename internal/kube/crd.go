package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// WaitCRDsEstablished waits until every named CRD reports the Established
// condition, or timeout passes (the error lists the ones still waiting, with
// what each last reported). It watches each CRD rather than polling: a
// polled GET of Argo CD's Application CRD is half a megabyte the API server
// encodes every time, while it is busy establishing it.
func (c *Client) WaitCRDsEstablished(ctx context.Context, names []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		mu      sync.Mutex
		waiting = map[string]string{} // name -> what it last reported
		wg      sync.WaitGroup
		errs    []error
	)
	for _, name := range names {
		waiting[name] = "not created yet"
	}
	crds := c.Dynamic.Resource(crdGVR)
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			selector := fields.OneTermEqualSelector("metadata.name", name).String()
			lw := &cache.ListWatch{
				ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
					o.FieldSelector = selector
					return crds.List(ctx, o)
				},
				WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
					o.FieldSelector = selector
					return crds.Watch(ctx, o)
				},
			}
			_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
				crd, ok := ev.Object.(*unstructured.Unstructured)
				if !ok || ev.Type == watch.Deleted || crd.GetName() != name {
					return false, nil
				}
				mu.Lock()
				defer mu.Unlock()
				if CRDEstablished(crd) {
					delete(waiting, name)
					return true, nil
				}
				waiting[name] = conditionsText(crd)
				return false, nil
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(waiting) > 0 {
		var left []string
		for n, last := range waiting {
			left = append(left, n+" ("+last+")")
		}
		sort.Strings(left)
		return fmt.Errorf("CRDs not Established after %s: %v: %w", timeout, left, errors.Join(errs...))
	}
	return nil
}

// OpenCRDStorage asks the API server for an object that does not exist, of
// every version each CRD serves. An API server sets up a custom resource's
// storage, and starts filling its watch cache, on the first request for it;
// a list that arrives before the cache is filled is refused with 429, and
// client-go waits the second the server asks for before it retries. In the
// lab that second was Argo CD's application controller's, at start-up,
// every time. A GET by name is read from storage, not from the cache, so it
// is answered (404) at once. Best effort: errors are ignored.
func (c *Client) OpenCRDStorage(ctx context.Context, crds []*unstructured.Unstructured) {
	var wg sync.WaitGroup
	for _, gvr := range servedResources(crds) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Any namespace will do for a namespaced kind: the answer is 404.
			_, _ = c.Dynamic.Resource(gvr.GroupVersionResource).Namespace(gvr.namespace).Get(ctx, "tug-storage-probe", metav1.GetOptions{})
		}()
	}
	wg.Wait()
}

type servedResource struct {
	schema.GroupVersionResource
	namespace string // "" for a cluster-scoped kind
}

// servedResources lists the resources the CRDs serve, one per served version.
func servedResources(crds []*unstructured.Unstructured) []servedResource {
	var out []servedResource
	for _, crd := range crds {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
		scope, _, _ := unstructured.NestedString(crd.Object, "spec", "scope")
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		ns := ""
		if scope == "Namespaced" {
			ns = metav1.NamespaceDefault
		}
		for _, v := range versions {
			m, _ := v.(map[string]any)
			name, _ := m["name"].(string)
			if served, _ := m["served"].(bool); !served || name == "" || group == "" || plural == "" {
				continue
			}
			out = append(out, servedResource{schema.GroupVersionResource{Group: group, Version: name, Resource: plural}, ns})
		}
	}
	return out
}

// CRDEstablished reports whether a CRD's Established condition is True.
func CRDEstablished(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// conditionsText summarises a CRD's status conditions ("NamesAccepted=True,
// Established=False: reason").
func conditionsText(crd *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	if len(conds) == 0 {
		return "no conditions yet"
	}
	var parts []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		part := fmt.Sprintf("%v=%v", m["type"], m["status"])
		if msg, _ := m["message"].(string); msg != "" && m["status"] != "True" {
			part += ": " + msg
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}
