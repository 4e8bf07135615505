package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// DefaultFieldManager owns the fields tug applies.
const DefaultFieldManager = "tug"

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// FieldManager names the server-side apply manager ("tug" if empty).
	// Use a distinct manager for fields applied separately from the rest of
	// an object, or the next apply of the rest removes them.
	FieldManager string
	// DryRun asks the API server to validate and admit without persisting.
	DryRun bool
	// Force takes ownership of fields another manager set (kubectl's
	// --force-conflicts).
	Force bool
	// PendingKinds are kinds whose CRDs an earlier step of the same dry run
	// would create: objects of these kinds are reported Pending instead of
	// failing because the server does not serve them yet.
	PendingKinds map[schema.GroupKind]bool
	// CRDTimeout bounds the wait for applied CRDs to be Established
	// (default 60s).
	CRDTimeout time.Duration
}

// Action is what Apply did (or, on a dry run, would do) to one object.
type Action string

const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	// Pending: a dry run could not ask the server because the object's kind
	// comes from a CRD, or its namespace from a Namespace, that the same dry
	// run would create first.
	Pending Action = "pending"
)

// Result is the outcome for one object.
type Result struct {
	Ref    string // Kind/namespace/name
	Action Action
	// Changes lists the field paths that differ between the live object and
	// the applied one (values are never included: objects may be Secrets).
	Changes []string
	// Object is the object as the server returned it (nil for Pending).
	Object *unstructured.Unstructured `json:"-"` // may be a Secret: never serialized
}

// Apply is NewClient(cfg) followed by Client.Apply.
func Apply(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured, opts ApplyOptions) ([]Result, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return c.Apply(ctx, objs, opts)
}

// Apply server-side applies objs: CRDs first (then waits until they are
// Established and refreshes discovery), then Namespaces, then everything
// else in input order. It keeps going after a failed object and returns every
// failure joined, each naming its object.
func (c *Client) Apply(ctx context.Context, objs []*unstructured.Unstructured, opts ApplyOptions) ([]Result, error) {
	if opts.FieldManager == "" {
		opts.FieldManager = DefaultFieldManager
	}
	if opts.CRDTimeout == 0 {
		opts.CRDTimeout = 60 * time.Second
	}
	crds, rest := SplitCRDs(Order(objs))
	crdKinds := CRDKinds(crds)
	pendingKinds := maps.Clone(crdKinds)
	for gk := range opts.PendingKinds {
		pendingKinds[gk] = true
	}

	// On a dry run a Namespace is not really created, so objects inside a
	// new one cannot be checked by the server either.
	pendingNamespaces := map[string]bool{}
	var results []Result
	var errs []error
	var mu sync.Mutex // apply runs concurrently within a rank
	apply := func(obj *unstructured.Unstructured, settle time.Duration) {
		r, err := c.applyOne(ctx, obj, opts, settle)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if opts.DryRun && (errNoMatch(err) && pendingKinds[obj.GroupVersionKind().GroupKind()] ||
				apierrors.IsNotFound(err) && pendingNamespaces[obj.GetNamespace()]) {
				results = append(results, Result{Ref: Ref(obj), Action: Pending})
				return
			}
			errs = append(errs, err)
			return
		}
		if opts.DryRun && r.Action == Created && obj.GetKind() == "Namespace" && obj.GroupVersionKind().Group == "" {
			pendingNamespaces[obj.GetName()] = true
		}
		results = append(results, r)
	}

	applyAll(crds, func(crd *unstructured.Unstructured) { apply(crd, 0) })
	// Discovery can trail Established: in the lab, root.yaml's AppProject
	// failed with "no matches for kind" right after the install's CRDs were
	// Established and Application had resolved. Keep retrying missing
	// kinds in this and the next applies on this client for a while.
	settle := time.Duration(0)
	if !c.crdsEstablished.IsZero() && time.Since(c.crdsEstablished) < 2*time.Minute {
		settle = discoveryLag
	}
	// Objects of the kinds being established wait for them; the others go
	// while the API server establishes the CRDs (about a second for Argo
	// CD's), not after.
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	waiting, independent := splitKinds(rest, crdKinds)
	independentDone := make(chan struct{})
	go func() {
		defer close(independentDone)
		if err := applyByRank(ctx, independent, func(obj *unstructured.Unstructured) { apply(obj, settle) }); err != nil {
			fail(err)
		}
	}()
	if len(crds) > 0 && !opts.DryRun {
		names := make([]string, 0, len(crds))
		for _, crd := range crds {
			names = append(names, crd.GetName())
		}
		if err := c.WaitCRDsEstablished(ctx, names, opts.CRDTimeout); err != nil {
			<-independentDone
			return results, errors.Join(append(errs, err)...)
		}
		c.ResetMapper()
		c.OpenCRDStorage(ctx, crds)
		c.crdsEstablished = time.Now()
		settle = discoveryLag
	}
	<-independentDone
	if err := applyByRank(ctx, waiting, func(obj *unstructured.Unstructured) { apply(obj, settle) }); err != nil {
		fail(err)
	}
	sortResults(results, append(append([]*unstructured.Unstructured(nil), crds...), rest...))
	return results, errors.Join(errs...)
}

// applyByRank applies Namespaces first, then the rest; within each rank the
// objects do not depend on each other, so they go in parallel (an install is
// ~60 objects: serially, two round trips each add up to seconds).
// It stops at the first rank after ctx is done and returns ctx's error.
func applyByRank(ctx context.Context, objs []*unstructured.Unstructured, apply func(*unstructured.Unstructured)) error {
	for _, group := range byRank(objs) {
		if err := ctx.Err(); err != nil {
			return err
		}
		applyAll(group, apply)
	}
	return nil
}

// splitKinds separates the objects whose kind is in kinds.
func splitKinds(objs []*unstructured.Unstructured, kinds map[schema.GroupKind]bool) (in, out []*unstructured.Unstructured) {
	for _, o := range objs {
		if kinds[o.GroupVersionKind().GroupKind()] {
			in = append(in, o)
		} else {
			out = append(out, o)
		}
	}
	return in, out
}

// applyAll runs f on every object, applyParallelism at a time, and returns
// when all are done.
func applyAll(objs []*unstructured.Unstructured, f func(*unstructured.Unstructured)) {
	sem := make(chan struct{}, applyParallelism)
	var wg sync.WaitGroup
	for _, obj := range objs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(obj)
		}()
	}
	wg.Wait()
}

// applyParallelism bounds concurrent requests per rank.
const applyParallelism = 8

// byRank splits ordered objects into runs of equal rank.
func byRank(objs []*unstructured.Unstructured) [][]*unstructured.Unstructured {
	var groups [][]*unstructured.Unstructured
	for i, o := range objs {
		if i == 0 || rank(o) != rank(objs[i-1]) {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], o)
	}
	return groups
}

// sortResults puts the results of the parallel applies back in the order
// the objects were applied in.
func sortResults(results []Result, rest []*unstructured.Unstructured) {
	pos := make(map[string]int, len(rest))
	for i, o := range rest {
		pos[Ref(o)] = i + 1
	}
	sort.SliceStable(results, func(i, j int) bool { return pos[results[i].Ref] < pos[results[j].Ref] })
}

func (c *Client) applyOne(ctx context.Context, obj *unstructured.Unstructured, opts ApplyOptions, settle time.Duration) (Result, error) {
	ref := Ref(obj)
	// Resolve with settle first so a kind from a just-established CRD gets
	// its retries; ResourceFor then hits the warm mapper.
	if _, err := c.Mapping(ctx, obj.GroupVersionKind(), settle); err != nil {
		return Result{}, fmt.Errorf("apply %s: %w", ref, err)
	}
	ri, _, err := c.ResourceFor(ctx, obj)
	if err != nil {
		return Result{}, fmt.Errorf("apply %w", err) // err names the object
	}
	live, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		live = nil
	} else if err != nil {
		return Result{}, fmt.Errorf("apply %s: read live object: %w", ref, err)
	}
	body, err := json.Marshal(applyBody(obj))
	if err != nil {
		return Result{}, fmt.Errorf("apply %s: encode: %w", ref, err)
	}
	po := metav1.PatchOptions{FieldManager: opts.FieldManager, Force: &opts.Force}
	if opts.DryRun {
		po.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, po)
	if err != nil {
		return Result{}, fmt.Errorf("apply %s: %w", ref, err)
	}
	r := Result{Ref: ref, Object: out, Action: Created}
	if live != nil {
		r.Changes = ChangedPaths(Comparable(live), Comparable(out))
		r.Action = Configured
		if len(r.Changes) == 0 {
			r.Action = Unchanged
		}
	}
	return r, nil
}

// applyBody drops what a manifest must not send in an apply request: server
// owned metadata and status.
func applyBody(obj *unstructured.Unstructured) map[string]any {
	o := obj.DeepCopy()
	unstructured.RemoveNestedField(o.Object, "status")
	for _, f := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	return o.Object
}

// Comparable strips what changes without anyone changing the object's
// content (resourceVersion, generation, managedFields, status), so two reads
// compare equal exactly when the desired state is the same.
func Comparable(obj *unstructured.Unstructured) map[string]any {
	o := obj.DeepCopy()
	unstructured.RemoveNestedField(o.Object, "status")
	for _, f := range []string{"resourceVersion", "generation", "managedFields"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	return o.Object
}

// ChangedPaths returns the sorted dotted paths where a and b differ. Lists
// are compared whole (a changed list is one path).
func ChangedPaths(a, b map[string]any) []string {
	var out []string
	diffInto(&out, "", a, b)
	sort.Strings(out)
	return out
}

func diffInto(out *[]string, prefix string, a, b any) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if !aok || !bok {
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, prefix)
		}
		return
	}
	keys := map[string]bool{}
	for k := range am {
		keys[k] = true
	}
	for k := range bm {
		keys[k] = true
	}
	for k := range keys {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		diffInto(out, p, am[k], bm[k])
	}
}

// Order returns objs with Namespaces first (CRDs are split off separately by
// SplitCRDs), keeping input order otherwise.
func Order(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := append([]*unstructured.Unstructured(nil), objs...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

func rank(obj *unstructured.Unstructured) int {
	switch obj.GroupVersionKind().GroupKind() {
	case crdGK:
		return 0
	case schema.GroupKind{Kind: "Namespace"}:
		return 1
	default:
		return 2
	}
}

var crdGK = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// SplitCRDs separates CustomResourceDefinitions from the other objects,
// keeping order within each.
func SplitCRDs(objs []*unstructured.Unstructured) (crds, rest []*unstructured.Unstructured) {
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == crdGK {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	return crds, rest
}

// CRDKinds returns the group/kinds the given CRDs define.
func CRDKinds(crds []*unstructured.Unstructured) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, crd := range crds {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		if kind != "" {
			out[schema.GroupKind{Group: group, Kind: kind}] = true
		}
	}
	return out
}
