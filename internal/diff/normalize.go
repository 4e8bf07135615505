package diff

import (
	"fmt"
	"sort"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/argo/normalizers"
	gediff "github.com/argoproj/gitops-engine/pkg/diff"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// ResourceKey identifies a resource inside one Application as Argo CD does:
// group, kind, namespace and name (the API version may change freely).
type ResourceKey struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String is "Kind namespace/name" (with the group for non-core kinds), the
// way a reviewer reads it.
func (k ResourceKey) String() string {
	kind := k.Kind
	if k.Group != "" {
		kind = k.Kind + "." + k.Group
	}
	if k.Namespace == "" {
		return kind + " " + k.Name
	}
	return kind + " " + k.Namespace + "/" + k.Name
}

func (k ResourceKey) less(o ResourceKey) bool {
	if k.Group != o.Group {
		return k.Group < o.Group
	}
	if k.Kind != o.Kind {
		return k.Kind < o.Kind
	}
	if k.Namespace != o.Namespace {
		return k.Namespace < o.Namespace
	}
	return k.Name < o.Name
}

func keyOf(o *unstructured.Unstructured) ResourceKey {
	return ResourceKey{Group: o.GroupVersionKind().Group, Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}
}

// normalizer removes what Argo CD does not compare: server-set metadata,
// status, kubectl's last-applied annotation, and the Application's own
// spec.ignoreDifferences (with Argo CD's normalizer, so JSON pointers and
// jq expressions mean what they mean to Argo CD).
type normalizer struct {
	ignore gediff.Normalizer
}

func newNormalizer(ignore []v1alpha1.ResourceIgnoreDifferences) (*normalizer, error) {
	n := &normalizer{}
	if len(ignore) > 0 {
		in, err := normalizers.NewIgnoreNormalizer(ignore, nil, normalizers.IgnoreNormalizerOpts{})
		if err != nil {
			return nil, fmt.Errorf("spec.ignoreDifferences: %w", err)
		}
		n.ignore = in
	}
	return n, nil
}

func (n *normalizer) normalize(o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	o = o.DeepCopy()
	delete(o.Object, "status")
	for _, f := range []string{"creationTimestamp", "managedFields", "resourceVersion", "uid", "generation", "selfLink"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	if ann := o.GetAnnotations(); ann != nil {
		delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
		if len(ann) == 0 {
			ann = nil
		}
		o.SetAnnotations(ann)
	}
	if n.ignore != nil {
		if err := n.ignore.Normalize(o); err != nil {
			return nil, fmt.Errorf("%s: spec.ignoreDifferences: %w", keyOf(o), err)
		}
	}
	return o, nil
}

// isSecret reports a core Secret, whose values are never shown.
func isSecret(o *unstructured.Unstructured) bool {
	return o != nil && o.GroupVersionKind().Group == "" && o.GetKind() == "Secret"
}

// hideSecrets masks a Secret pair with Argo CD's own masking
// (gitops-engine's HideSecretData): stringData folded into data, every value
// replaced by "+" signs whose count differs exactly where the values differ,
// so a diff shows which keys changed and nothing of what they hold. Either
// side may be nil (an added or removed Secret).
func hideSecrets(base, head *unstructured.Unstructured) (*unstructured.Unstructured, *unstructured.Unstructured, error) {
	if !isSecret(base) && !isSecret(head) {
		return base, head, nil
	}
	h, b, err := gediff.HideSecretData(head, base, nil)
	if err != nil {
		// Never fall back to showing the values.
		return nil, nil, fmt.Errorf("masking Secret data: %w", err)
	}
	return b, h, nil
}

// manifestYAML is the object as YAML with sorted keys (sigs.k8s.io/yaml goes
// through JSON, whose maps encode in key order), so unrelated re-orderings
// in a template never show up as changes.
func manifestYAML(o *unstructured.Unstructured) (string, error) {
	if o == nil {
		return "", nil
	}
	data, err := yaml.Marshal(o.Object)
	if err != nil {
		return "", fmt.Errorf("%s: %w", keyOf(o), err)
	}
	return string(data), nil
}

func sortKeys(keys []ResourceKey) {
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
}
