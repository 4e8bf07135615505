package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// WaitCRDsEstablished polls until every named CRD reports the Established
// condition, or timeout passes (the error lists the ones still waiting).
func (c *Client) WaitCRDsEstablished(ctx context.Context, names []string, timeout time.Duration) error {
	waiting := map[string]bool{}
	for _, n := range names {
		waiting[n] = true
	}
	// What each waiting CRD last reported, for the error.
	lastConditions := map[string]string{}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for name := range waiting {
			crd, err := c.Dynamic.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("read CRD %s: %w", name, err)
			}
			if CRDEstablished(crd) {
				delete(waiting, name)
			} else {
				lastConditions[name] = conditionsText(crd)
			}
		}
		return len(waiting) == 0, nil
	})
	if err != nil {
		var left []string
		for n := range waiting {
			left = append(left, n+" ("+lastConditions[n]+")")
		}
		return fmt.Errorf("CRDs not Established after %s: %v: %w", timeout, left, err)
	}
	return nil
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
