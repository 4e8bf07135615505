package repo

import (
	"encoding/json"

	"gopkg.in/yaml.v3"
)

// Decoded is what DecodeRendered found in one rendered object: at most one
// of App, Set and Project is set.
type Decoded struct {
	App     *Application
	Set     *ApplicationSet
	Project *AppProject
	// Problems are decoding findings (unknown fields, wrong types, missing
	// fields), positioned at pos.
	Problems []Problem
}

// DecodeRendered decodes an Argo CD object taken from a source's rendered
// output (a Helm template, a Kustomize build) with the same strict rules as
// a file. Field positions inside rendered text mean nothing to the author,
// so every finding points at pos (the template or source); origins are the
// files ValuePos searches for a value's literal text.
func (r *Repo) DecodeRendered(obj map[string]any, pos Position, renderedFrom string, origins []string) Decoded {
	data, err := json.Marshal(obj)
	if err != nil {
		return Decoded{Problems: []Problem{{Rule: "parse.yaml", Pos: pos, Message: "rendered object: " + err.Error()}}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return Decoded{}
	}
	scratch := &Repo{Root: r.Root, Config: r.Config, ArgoCDConfig: map[string]string{}, PatchFiles: map[string]bool{}}
	apiVersion, kind := scalarField(doc.Content[0], "apiVersion"), scalarField(doc.Content[0], "kind")
	scratch.decodeArgo(pos.File, pos, &doc, apiVersion, kind)
	var out Decoded
	for _, p := range scratch.Problems {
		p.Pos = pos
		out.Problems = append(out.Problems, p)
	}
	switch {
	case len(scratch.Applications) == 1:
		a := scratch.Applications[0]
		a.Node, a.RenderedFrom, a.Origins = nil, renderedFrom, origins
		out.App = a
	case len(scratch.ApplicationSets) == 1:
		s := scratch.ApplicationSets[0]
		s.Node, s.RenderedFrom = nil, renderedFrom
		out.Set = s
	case len(scratch.Projects) == 1:
		p := scratch.Projects[0]
		p.Node = nil
		out.Project = p
	}
	return out
}
