package repo

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/argoproj/argo-cd/v3/applicationset/controllers/template"
	"github.com/argoproj/argo-cd/v3/applicationset/utils"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/yaml"
)

// TestRenderTemplateMatchesController: the fast template renderer gives
// what the ApplicationSet controller's RenderTemplateParams gives, value
// for value and error for error, over both template engines, templated map
// keys, a valuesObject with nulls and numbers, and finalizer rules.
func TestRenderTemplateMatchesController(t *testing.T) {
	const tmplYAML = `
metadata:
  name: '{{NAME}}'
  labels:
    team: '{{TEAM}}'
    '{{TEAM}}-owned': "true"
  annotations:
    plain: no action here
spec:
  project: '{{PROJECT}}'
  source:
    repoURL: https://github.com/acme/fleet.git
    targetRevision: HEAD
    path: '{{PATH}}'
    helm:
      releaseName: '{{NAME}}'
      valueFiles: [values.yaml, 'values-{{ENV}}.yaml']
      parameters:
        - {name: image.tag, value: '{{TAG}}', forceString: true}
      valuesObject:
        replicas: 3
        ratio: 1.5
        empty: null
        list: [a, null, '{{ENV}}']
        nested: {'{{ENV}}': {enabled: true}}
  destination:
    server: https://kubernetes.default.svc
    namespace: '{{NAMESPACE}}'
  syncPolicy:
    automated: {prune: true}
    retry: {limit: 5, backoff: {duration: 5s, factor: 2, maxDuration: 3m}}
    syncOptions: [CreateNamespace=true]
  ignoreDifferences:
    - group: apps
      kind: Deployment
      jsonPointers: [/spec/replicas]
`
	goParams := map[string]any{"name": "svc-a", "team": "payments", "project": "default", "path": map[string]any{"path": "services/svc-a", "basename": "svc-a"}, "env": "prod", "tag": "1.2.3"}
	flatParams := map[string]any{"NAME": "svc-a", "TEAM": "payments", "PROJECT": "default", "PATH": "services/svc-a", "ENV": "prod", "TAG": "1.2.3", "NAMESPACE": "svc-a"}
	goTmpl := map[string]string{"{{NAME}}": "{{.name}}", "{{TEAM}}": "{{.team | upper}}", "{{PROJECT}}": "{{.project}}",
		"{{PATH}}": "{{.path.path}}", "{{ENV}}": "{{.env}}", "{{TAG}}": `{{ printf "v%s" .tag }}`, "{{NAMESPACE}}": "{{.path.basename | normalize}}"}
	goYAML := tmplYAML
	for k, v := range goTmpl {
		goYAML = strings.ReplaceAll(goYAML, k, v)
	}
	preserve := &v1alpha1.ApplicationSetSyncPolicy{PreserveResourcesOnDeletion: true}
	cases := []struct {
		name       string
		yaml       string
		params     map[string]any
		goTemplate bool
		options    []string
		policy     *v1alpha1.ApplicationSetSyncPolicy
		finalizers []string
	}{
		{name: "fasttemplate", yaml: tmplYAML, params: flatParams},
		{name: "fasttemplate, a parameter missing", yaml: tmplYAML, params: map[string]any{"NAME": "x"}},
		{name: "goTemplate", yaml: goYAML, params: goParams, goTemplate: true},
		{name: "goTemplate, preserve resources", yaml: goYAML, params: goParams, goTemplate: true, policy: preserve},
		{name: "goTemplate, finalizers set", yaml: goYAML, params: goParams, goTemplate: true, finalizers: []string{"example.com/keep"}},
		{name: "goTemplate missingkey=error fails", yaml: goYAML, params: without(goParams, "tag"), goTemplate: true, options: []string{"missingkey=error"}},
		{name: "goTemplate syntax error", yaml: strings.ReplaceAll(goYAML, "{{.project}}", "{{.project"), params: goParams, goTemplate: true},
		{name: "no parameters", yaml: goYAML, goTemplate: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tmpl v1alpha1.ApplicationSetTemplate
			if err := yaml.Unmarshal([]byte(c.yaml), &tmpl); err != nil {
				t.Fatal(err)
			}
			tmpl.Finalizers = c.finalizers
			want, wantErr := (&utils.Render{}).RenderTemplateParams(template.GetTempApplication(tmpl), c.policy, c.params, c.goTemplate, c.options)
			got, gotErr := renderTemplate(template.GetTempApplication(tmpl), c.policy, c.params, c.goTemplate, c.options)
			if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
				t.Fatalf("error: controller %v, tug %v", wantErr, gotErr)
			}
			// The controller's walk leaves empty slices where the template
			// had none; JSON and every reader see the same Application.
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(got)
			if !cmp.Equal(want, got, cmpopts.EquateEmpty()) || string(wj) != string(gj) {
				w, _ := yaml.Marshal(want)
				g, _ := yaml.Marshal(got)
				t.Fatalf("rendered Applications differ\ncontroller:\n%s\ntug:\n%s\n%s", w, g, cmp.Diff(want, got))
			}
			if wantErr == nil && c.params != nil && got.Name == "{{NAME}}" {
				t.Fatalf("nothing was rendered: %+v", got.ObjectMeta)
			}
		})
	}
}

// without copies params less one key: one field then fails, so the error
// does not depend on the controller's map iteration order.
func without(params map[string]any, key string) map[string]any {
	out := map[string]any{}
	for k, v := range params {
		if k != key {
			out[k] = v
		}
	}
	return out
}
