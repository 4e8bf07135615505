package repo

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/argoproj/argo-cd/v3/applicationset/utils"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"sigs.k8s.io/yaml"
)

// expandApplicationSets turns ApplicationSets with list generators into the
// Applications Argo CD's ApplicationSet controller would create, using Argo
// CD's own template renderer. Other generators need a cluster or an SCM and
// are reported, not guessed.
func (r *Repo) expandApplicationSets() {
	for _, s := range r.ApplicationSets {
		tmpl := tempApplication(s.Spec.Template)
		for gi, g := range s.Spec.Generators {
			genPath := fmt.Sprintf("spec.generators[%d]", gi)
			if g.List == nil {
				r.addProblem("appset.generator-unsupported", s.FieldPos(genPath),
					"only list generators are expanded offline; Applications from this generator are not validated",
					"ApplicationSet %q: generator %d is not a list generator", s.Name, gi)
				continue
			}
			params, err := listParams(g.List, s.Spec.GoTemplate)
			if err != nil {
				r.addProblem("appset.render-failed", s.FieldPos(genPath+".list"), "list elements must be maps of strings (or use goTemplate: true)",
					"ApplicationSet %q: %v", s.Name, err)
				continue
			}
			for ei, p := range params {
				app, err := (&utils.Render{}).RenderTemplateParams(tmpl, s.Spec.SyncPolicy, p, s.Spec.GoTemplate, s.Spec.GoTemplateOptions)
				if err != nil {
					r.addProblem("appset.render-failed", s.FieldPos(fmt.Sprintf("%s.list.elements[%d]", genPath, ei)),
						"check the template's {{…}} parameters against the element's keys", "ApplicationSet %q element %d: %v", s.Name, ei, err)
					continue
				}
				app.Namespace = s.Namespace // as the controller does: apps live in the appset's namespace
				app.APIVersion, app.Kind = "argoproj.io/v1alpha1", "Application"
				r.Applications = append(r.Applications, &Application{
					Application: *app, Pos: s.Pos, Node: s.Node, GeneratedBy: s, nodePrefix: "spec.template.",
				})
			}
		}
	}
}

// tempApplication mirrors Argo CD's template.GetTempApplication.
func tempApplication(t v1alpha1.ApplicationSetTemplate) *v1alpha1.Application {
	var a v1alpha1.Application
	a.Annotations = t.Annotations
	a.Labels = t.Labels
	a.Namespace = t.Namespace
	a.Name = t.Name
	a.Spec = t.Spec
	a.Finalizers = t.Finalizers
	return &a
}

// listParams mirrors Argo CD's ListGenerator.GenerateParams.
func listParams(l *v1alpha1.ListGenerator, goTemplate bool) ([]map[string]any, error) {
	res := make([]map[string]any, 0, len(l.Elements))
	for i, raw := range l.Elements {
		var element map[string]any
		if err := json.Unmarshal(raw.Raw, &element); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		if goTemplate {
			res = append(res, element)
			continue
		}
		params := map[string]any{}
		for key, value := range element {
			if key == "values" {
				values, ok := value.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("element %d: values must be a map", i)
				}
				for k, v := range values {
					s, ok := v.(string)
					if !ok {
						return nil, fmt.Errorf("element %d: values.%s must be a string", i, k)
					}
					params["values."+k] = s
				}
				continue
			}
			s, ok := value.(string)
			if !ok {
				return nil, fmt.Errorf("element %d: %s must be a string (set goTemplate: true for structured values)", i, key)
			}
			params[key] = s
		}
		res = append(res, params)
	}
	if l.ElementsYaml != "" {
		var more []map[string]any
		if err := yaml.Unmarshal([]byte(l.ElementsYaml), &more); err != nil {
			return nil, errors.New("elementsYaml: " + err.Error())
		}
		res = append(res, more...)
	}
	return res, nil
}
