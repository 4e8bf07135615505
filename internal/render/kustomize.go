// Package render turns Argo CD sources — Kustomize directories, Helm charts
// and plain manifest directories — into Kubernetes objects, offline, with the
// same libraries Argo CD's repo-server uses.
package render

import (
	"bytes"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Kustomize builds the kustomization in dir (on disk) and returns its objects.
func Kustomize(dir string) ([]*unstructured.Unstructured, error) {
	return KustomizeFS(filesys.MakeFsOnDisk(), dir)
}

// KustomizeFS builds the kustomization in dir on fs, so callers can build an
// in-memory overlay without writing files.
func KustomizeFS(fs filesys.FileSystem, dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	// Each resource's own map, not AsYaml and a second YAML parse: that
	// re-parse was 40% of building infra/argocd (0.9 s -> 0.5 s).
	var objs []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		obj, err := resourceObject(r)
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// DecodeManifests splits a multi-document YAML or JSON stream into objects,
// skipping empty documents.
func DecodeManifests(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF {
				return objs, nil
			}
			return nil, fmt.Errorf("decode manifest %d: %w", len(objs)+1, err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// resourceObject converts a kustomize resource to an Unstructured. kyaml's
// map holds Go ints where Kubernetes' JSON values hold int64; any value the
// two could disagree on (a timestamp, a non-string key) takes the slower
// JSON path instead.
func resourceObject(r *resource.Resource) (*unstructured.Unstructured, error) {
	m, err := r.Map()
	if err == nil {
		if v, ok := jsonValue(m); ok {
			return &unstructured.Unstructured{Object: v.(map[string]any)}, nil
		}
	}
	data, err := r.MarshalJSON()
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	return obj, obj.UnmarshalJSON(data)
}

// jsonValue rewrites v in place into the types Kubernetes' JSON decoding
// produces; ok is false for any other type.
func jsonValue(v any) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			y, ok := jsonValue(x)
			if !ok {
				return nil, false
			}
			t[k] = y
		}
		return t, true
	case []any:
		for i, x := range t {
			y, ok := jsonValue(x)
			if !ok {
				return nil, false
			}
			t[i] = y
		}
		return t, true
	case int:
		return int64(t), true
	case int64, float64, string, bool, nil:
		return t, true
	}
	return nil, false
}
