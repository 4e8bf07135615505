package repo

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/argoproj/argo-cd/v3/applicationset/utils"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
)

// renderTemplate renders an ApplicationSet's Application template for one
// parameter set with the same result as the controller's
// utils.Render.RenderTemplateParams, at a fraction of the cost.
//
// That function walks every string field of the Application struct (a few
// hundred, nearly all empty) and hands each to Render.Replace, which with
// goTemplate builds a text/template carrying all of sprig's functions: on a
// 1,000-directory generator that was three quarters of validate's time. A
// string without "{{" renders to itself there (text/template has no action
// to run; the fasttemplate path returns it unchanged), so this walks only
// the fields the template sets and gives Replace only the strings holding
// an action. When any string fails, the controller's own function is run
// instead, so that the error is exactly the one it reports.
func renderTemplate(tmpl *v1alpha1.Application, syncPolicy *v1alpha1.ApplicationSetSyncPolicy, params map[string]any, goTemplate bool, options []string) (*v1alpha1.Application, error) {
	r := &utils.Render{}
	slow := func() (*v1alpha1.Application, error) {
		return r.RenderTemplateParams(tmpl, syncPolicy, params, goTemplate, options)
	}
	if len(params) == 0 {
		return slow() // returns the template itself, unrendered
	}
	data, err := json.Marshal(tmpl)
	if err != nil {
		return slow()
	}
	// Numbers decode as float64, as the controller decodes a valuesObject.
	var tree any
	if err := json.Unmarshal(data, &tree); err != nil {
		return slow()
	}
	out, err := replaceTree(r, tree, params, goTemplate, options)
	if err != nil {
		return slow()
	}
	if data, err = json.Marshal(out); err != nil {
		return slow()
	}
	app := &v1alpha1.Application{}
	if err := json.Unmarshal(data, app); err != nil {
		return slow()
	}
	// As RenderTemplateParams does: the resources finalizer unless the
	// ApplicationSet preserves resources or the template names finalizers.
	if (syncPolicy == nil || !syncPolicy.PreserveResourcesOnDeletion) && len(app.Finalizers) == 0 {
		app.Finalizers = []string{v1alpha1.ResourcesFinalizerName}
	}
	return app, nil
}

// replaceTree renders every string value and map key holding "{{" with
// Argo CD's Replace. Null map values are dropped, as the controller's walk
// drops nil entries of the maps it copies (a valuesObject's nulls).
func replaceTree(r *utils.Render, v any, params map[string]any, goTemplate bool, options []string) (any, error) {
	replace := func(s string) (string, error) {
		if !strings.Contains(s, "{{") {
			return s, nil
		}
		return r.Replace(s, params, goTemplate, options)
	}
	switch x := v.(type) {
	case string:
		return replace(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = replaceTree(r, e, params, goTemplate, options); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make(map[string]any, len(x))
		for _, k := range keys {
			if x[k] == nil {
				continue
			}
			e, err := replaceTree(r, x[k], params, goTemplate, options)
			if err != nil {
				return nil, err
			}
			key, err := replace(k)
			if err != nil {
				return nil, err
			}
			out[key] = e
		}
		return out, nil
	}
	return v, nil
}
