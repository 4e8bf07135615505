package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/tug-gitops/tug/internal/repo"
)

// builtinTypes is the structured-merge-diff schema of Kubernetes 1.34 that
// client-go embeds for server-side apply; it rejects unknown fields and wrong
// types, offline. Built once: parsing it takes a moment.
var builtinTypes = sync.OnceValue(func() managedfields.TypeConverter {
	return applyconfigurations.NewTypeConverter(clientgoscheme.Scheme)
})

// clusterScoped lists the built-in kinds that are not namespaced (Kubernetes
// 1.34). Argo CD learns this from discovery; offline we must know it.
var clusterScoped = map[schema.GroupKind]bool{}

func init() {
	for _, gk := range []string{
		"Namespace", "Node", "PersistentVolume", "ComponentStatus",
		"ClusterRole.rbac.authorization.k8s.io", "ClusterRoleBinding.rbac.authorization.k8s.io",
		"CustomResourceDefinition.apiextensions.k8s.io", "APIService.apiregistration.k8s.io",
		"StorageClass.storage.k8s.io", "CSIDriver.storage.k8s.io", "CSINode.storage.k8s.io", "VolumeAttachment.storage.k8s.io", "VolumeAttributesClass.storage.k8s.io",
		"PriorityClass.scheduling.k8s.io", "RuntimeClass.node.k8s.io", "IngressClass.networking.k8s.io",
		"IPAddress.networking.k8s.io", "ServiceCIDR.networking.k8s.io",
		"ValidatingWebhookConfiguration.admissionregistration.k8s.io", "MutatingWebhookConfiguration.admissionregistration.k8s.io",
		"ValidatingAdmissionPolicy.admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io",
		"MutatingAdmissionPolicy.admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding.admissionregistration.k8s.io",
		"CertificateSigningRequest.certificates.k8s.io", "ClusterTrustBundle.certificates.k8s.io",
		"FlowSchema.flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration.flowcontrol.apiserver.k8s.io",
		"DeviceClass.resource.k8s.io", "ResourceSlice.resource.k8s.io", "StorageVersionMigration.storagemigration.k8s.io",
		"TokenReview.authentication.k8s.io", "SelfSubjectReview.authentication.k8s.io",
		"SubjectAccessReview.authorization.k8s.io", "SelfSubjectAccessReview.authorization.k8s.io", "SelfSubjectRulesReview.authorization.k8s.io",
	} {
		clusterScoped[schema.ParseGroupKind(gk)] = true
	}
}

// crdSchema is one served version of a CRD found in the repository.
type crdSchema struct {
	namespaced bool
	schema     *jsonschema.Schema // nil: no structural schema, anything goes
}

type schemaSet struct {
	crds      map[schema.GroupVersionKind]*crdSchema
	crdScopes map[schema.GroupKind]bool
}

// loadSchemas compiles the CRDs found in the repository.
func loadSchemas(r *repo.Repo) (*schemaSet, error) {
	s := &schemaSet{crds: map[schema.GroupVersionKind]*crdSchema{}, crdScopes: map[schema.GroupKind]bool{}}
	for _, o := range r.CRDs {
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		gk := schema.GroupKind{Group: group, Kind: kind}
		s.crdScopes[gk] = scope != "Cluster"
		for _, ver := range versions {
			vm, ok := ver.(map[string]any)
			if !ok {
				continue
			}
			name, _ := vm["name"].(string)
			c := &crdSchema{namespaced: scope != "Cluster"}
			if raw, ok, _ := unstructured.NestedMap(vm, "schema", "openAPIV3Schema"); ok {
				c.schema = compileCRDSchema(gk.String()+"/"+name, raw)
			}
			s.crds[gk.WithVersion(name)] = c
		}
	}
	return s, nil
}

// compileCRDSchema makes the CRD's schema strict the way the API server's
// pruning is: properties not declared are unknown fields, unless the schema
// says x-kubernetes-preserve-unknown-fields. A schema that does not compile
// is treated as absent.
func compileCRDSchema(id string, raw map[string]any) *jsonschema.Schema {
	doc := strictify(raw, true)
	data, err := json.Marshal(doc)
	if err != nil {
		return nil
	}
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	c := jsonschema.NewCompiler()
	url := "mem://crd/" + strings.ReplaceAll(id, "/", "_") + ".json"
	if c.AddResource(url, parsed) != nil {
		return nil
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil
	}
	return sch
}

func strictify(v any, top bool) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{}
	for k, x := range m {
		if strings.HasPrefix(k, "x-kubernetes-") {
			continue
		}
		switch k {
		case "properties", "patternProperties":
			props := map[string]any{}
			if pm, ok := x.(map[string]any); ok {
				for pk, pv := range pm {
					props[pk] = strictify(pv, false)
				}
			}
			out[k] = props
		case "items", "additionalProperties", "not":
			out[k] = strictify(x, false)
		case "allOf", "anyOf", "oneOf":
			if xs, ok := x.([]any); ok {
				var list []any
				for _, e := range xs {
					list = append(list, strictify(e, false))
				}
				out[k] = list
			}
		default:
			out[k] = x
		}
	}
	if top {
		props, _ := out["properties"].(map[string]any)
		if props == nil {
			props = map[string]any{}
		}
		for _, k := range []string{"apiVersion", "kind", "metadata"} {
			props[k] = map[string]any{} // the API server validates these itself
		}
		out["properties"] = props
	}
	preserve, _ := m["x-kubernetes-preserve-unknown-fields"].(bool)
	if _, has := out["properties"]; has && !preserve {
		if _, set := out["additionalProperties"]; !set {
			out["additionalProperties"] = false
		}
	}
	return out
}

// namespaced reports whether objects of this kind live in a namespace.
func (s *schemaSet) namespaced(gk schema.GroupKind) bool {
	if ns, ok := s.crdScopes[gk]; ok {
		return ns
	}
	return !clusterScoped[gk]
}

// errUnknownKind marks a kind with no schema anywhere.
type errUnknownKind struct{ gvk schema.GroupVersionKind }

func (e errUnknownKind) Error() string { return "no schema for " + e.gvk.String() }

// validate checks one rendered object.
func (s *schemaSet) validate(o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	if gvk.Group == "argoproj.io" {
		return nil // Argo CD kinds are decoded with Argo CD's own types by the loader
	}
	if c, ok := s.crds[gvk]; ok {
		if c.schema == nil {
			return nil
		}
		data, err := json.Marshal(o.Object)
		if err != nil {
			return err
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return err
		}
		if err := c.schema.Validate(inst); err != nil {
			return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		return nil
	}
	if !clientgoscheme.Scheme.Recognizes(gvk) {
		return errUnknownKind{gvk}
	}
	if _, err := builtinTypes().ObjectToTyped(o); err != nil {
		return err
	}
	return nil
}
