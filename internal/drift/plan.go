// Package drift proves that Argo CD's self-heal works for an Application:
// it changes live resources the app manages, one at a time, measures how
// long Argo CD takes to put each back, and always restores what Argo CD did
// not, so a failed check leaves no damage behind.
package drift

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Kinds of drift, in the order Verify causes them.
const (
	Scale         = "scale"
	Image         = "image"
	DeleteService = "delete-service"
)

// AllKinds is the default set.
var AllKinds = []string{Scale, Image, DeleteService}

// driftTagSuffix marks an image Verify set, so nobody mistakes it for a
// release if they see it.
const driftTagSuffix = "-tug-drift-check"

// Targets are the managed resources Verify changes.
type Targets struct {
	Deployment Ref
	Service    Ref // zero if the app manages no Service
}

// Ref names a namespaced object.
type Ref struct{ Namespace, Name string }

func (r Ref) String() string { return r.Namespace + "/" + r.Name }

// IsZero reports an empty Ref.
func (r Ref) IsZero() bool { return r.Name == "" }

// ChooseTargets picks, from the resources an Application manages, the first
// Deployment (by namespace/name) and a Service, preferring one in the
// Deployment's namespace with the Deployment's name.
func ChooseTargets(app *v1alpha1.Application) (Targets, error) {
	var deps, svcs []Ref
	for _, r := range app.Status.Resources {
		switch {
		case r.Group == "apps" && r.Kind == "Deployment":
			deps = append(deps, Ref{r.Namespace, r.Name})
		case r.Group == "" && r.Kind == "Service":
			svcs = append(svcs, Ref{r.Namespace, r.Name})
		}
	}
	if len(deps) == 0 {
		return Targets{}, fmt.Errorf("Application %s manages no Deployment (status.resources lists none): nothing to scale or re-image", app.Name)
	}
	sortRefs(deps)
	sortRefs(svcs)
	t := Targets{Deployment: deps[0]}
	for _, s := range svcs {
		if s == t.Deployment {
			t.Service = s
			return t, nil
		}
	}
	for _, s := range svcs {
		if s.Namespace == t.Deployment.Namespace {
			t.Service = s
			return t, nil
		}
	}
	if len(svcs) > 0 {
		t.Service = svcs[0]
	}
	return t, nil
}

func sortRefs(r []Ref) {
	sort.Slice(r, func(i, j int) bool { return r[i].String() < r[j].String() })
}

// scalePlan is a replica change and how to recognise and undo it.
type scalePlan struct {
	From, To int64
	Drift    []byte // merge patch
	Undo     []byte
}

// planScale adds one replica. A Deployment without spec.replicas has the
// API default, 1.
func planScale(dep *unstructured.Unstructured) scalePlan {
	from, ok, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas")
	if !ok {
		from = 1
	}
	return scalePlan{From: from, To: from + 1, Drift: replicasPatch(from + 1), Undo: replicasPatch(from)}
}

func replicasPatch(n int64) []byte {
	return []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))
}

// healedScale: the live Deployment asks for the original replicas again.
func healedScale(p scalePlan, live *unstructured.Unstructured) bool {
	n, ok, _ := unstructured.NestedInt64(live.Object, "spec", "replicas")
	if !ok {
		n = 1
	}
	return n == p.From
}

// imagePlan is an image change on one container.
type imagePlan struct {
	Container string
	From, To  string
	Drift     []byte // strategic merge patch (containers merge by name)
	Undo      []byte
}

// planImage retags the first container's image with a suffix that marks it
// as a drift check.
func planImage(dep *unstructured.Unstructured) (imagePlan, error) {
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		return imagePlan{}, fmt.Errorf("Deployment %s/%s has no containers", dep.GetNamespace(), dep.GetName())
	}
	c, _ := containers[0].(map[string]any)
	name, _ := c["name"].(string)
	from, _ := c["image"].(string)
	to := retag(from)
	return imagePlan{Container: name, From: from, To: to, Drift: imagePatch(name, to), Undo: imagePatch(name, from)}, nil
}

// retag appends driftTagSuffix to the tag (or adds a tag), keeping a digest
// reference valid by replacing it with a tag.
func retag(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	slash := strings.LastIndex(image, "/")
	if colon := strings.LastIndex(image, ":"); colon > slash {
		return image + driftTagSuffix
	}
	return image + ":latest" + driftTagSuffix
}

func imagePatch(container, image string) []byte {
	b, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"name": container, "image": image}},
	}}}})
	return b
}

// containerImage returns the image of the named container.
func containerImage(dep *unstructured.Unstructured, container string) string {
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok && m["name"] == container {
			s, _ := m["image"].(string)
			return s
		}
	}
	return ""
}

// recreatable turns a live Service into one that can be created again:
// server-owned fields dropped, and the cluster IPs too (the allocator may
// have handed them out meanwhile; Argo CD's desired state has none).
func recreatable(svc *unstructured.Unstructured) *unstructured.Unstructured {
	o := svc.DeepCopy()
	unstructured.RemoveNestedField(o.Object, "status")
	for _, f := range []string{"resourceVersion", "uid", "creationTimestamp", "managedFields", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(o.Object, "spec", "clusterIP")
	unstructured.RemoveNestedField(o.Object, "spec", "clusterIPs")
	return o
}
