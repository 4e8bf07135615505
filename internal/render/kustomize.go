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
	out, err := resMap.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return DecodeManifests(out)
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
