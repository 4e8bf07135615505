package repo

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"gopkg.in/yaml.v3"
	sigsjson "sigs.k8s.io/json"
)

var (
	unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)
	typeErrorRE    = regexp.MustCompile(`cannot unmarshal (\S+) into Go struct field (\S+) of type (\S+)`)
	yamlLineRE     = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)
)

const schemaHint = "see https://argo-cd.readthedocs.io/en/stable/operator-manual/declarative-setup/ for the fields of %s"

// decodeArgo converts a YAML document into Argo CD's Go type with strict
// JSON decoding (unknown fields and wrong types are errors, as the Kubernetes
// API server's strict field validation would report them).
func (r *Repo) decodeArgo(rel string, pos Position, doc *yaml.Node, apiVersion, kind string) {
	if apiVersion != "argoproj.io/v1alpha1" {
		r.addProblem("parse.schema", fieldPos(pos, doc, "apiVersion"), "use apiVersion: argoproj.io/v1alpha1",
			"%s has apiVersion %q; Argo CD serves only argoproj.io/v1alpha1", kind, apiVersion)
		return
	}
	v, err := nodeToJSONValue(doc)
	if err != nil {
		line, msg := yamlErrorLine(err)
		if line == 0 {
			line = pos.Line
		}
		r.addProblem("parse.yaml", Position{File: rel, Line: line}, "", "%s", msg)
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		r.addProblem("parse.yaml", pos, "", "cannot convert to JSON: %v", err)
		return
	}
	switch kind {
	case "Application":
		a := &Application{Pos: pos, Node: doc}
		if r.decodeStrict(pos, doc, data, &a.Application) {
			r.checkApplicationRequired(a)
			r.Applications = append(r.Applications, a)
		}
	case "AppProject":
		p := &AppProject{Pos: pos, Node: doc}
		if r.decodeStrict(pos, doc, data, &p.AppProject) {
			r.requireName(pos, doc, kind, p.Name)
			r.Projects = append(r.Projects, p)
		}
	case "ApplicationSet":
		s := &ApplicationSet{Pos: pos, Node: doc}
		if r.decodeStrict(pos, doc, data, &s.ApplicationSet) {
			r.requireName(pos, doc, kind, s.Name)
			if len(s.Spec.Generators) == 0 {
				r.addProblem("parse.schema", fieldPos(pos, doc, "spec"), "add spec.generators, e.g. a list generator", "ApplicationSet %q has no spec.generators", s.Name)
			}
			r.ApplicationSets = append(r.ApplicationSets, s)
		}
	}
}

// decodeStrict reports unknown fields and type errors at the offending
// field's line. It returns false when the object could not be decoded at all.
func (r *Repo) decodeStrict(pos Position, doc *yaml.Node, data []byte, into any) bool {
	kind := reflect.TypeOf(into).Elem().Name()
	strictErrs, err := sigsjson.UnmarshalStrict(data, into, sigsjson.DisallowUnknownFields)
	for _, se := range strictErrs {
		m := unknownFieldRE.FindStringSubmatch(se.Error())
		if m == nil {
			r.addProblem("parse.schema", pos, fmt.Sprintf(schemaHint, kind), "%s: %v", kind, se)
			continue
		}
		hint := fmt.Sprintf(schemaHint, kind)
		if s := suggestField(reflect.TypeOf(into).Elem(), m[1]); s != "" {
			hint = fmt.Sprintf("did you mean %q?", s)
		}
		r.addProblem("parse.schema", fieldPos(pos, doc, m[1]), hint, "%s: unknown field %q", kind, m[1])
	}
	if err == nil {
		return true
	}
	if m := typeErrorRE.FindStringSubmatch(err.Error()); m != nil {
		field := m[2]
		if i := strings.IndexByte(field, '.'); i >= 0 {
			field = field[i+1:] // drop the Go struct name
		}
		r.addProblem("parse.schema", valuePos(pos, doc, field), fmt.Sprintf("%s must be of type %s", field, m[3]),
			"%s: field %s: cannot use a %s where %s is expected", kind, field, m[1], m[3])
		return false
	}
	r.addProblem("parse.schema", pos, fmt.Sprintf(schemaHint, kind), "%s: %v", kind, err)
	return false
}

// valuePos points at a field's value (type errors are about the value).
func valuePos(def Position, doc *yaml.Node, path string) Position {
	p := fieldPos(def, doc, path)
	return p
}

func (r *Repo) requireName(pos Position, doc *yaml.Node, kind, name string) {
	if name == "" {
		r.addProblem("parse.schema", fieldPos(pos, doc, "metadata"), "add metadata.name", "%s has no metadata.name", kind)
	}
}

func (r *Repo) checkApplicationRequired(a *Application) {
	r.requireName(a.Pos, a.Node, "Application", a.Name)
	if a.Spec.Project == "" {
		r.addProblem("parse.schema", a.FieldPos("spec"), `add spec.project (use "default" for Argo CD's default project)`,
			"Application %q has no spec.project, which Argo CD requires", a.Name)
	}
	if a.Spec.Source == nil && len(a.Spec.Sources) == 0 && a.Spec.SourceHydrator == nil {
		r.addProblem("parse.schema", a.FieldPos("spec"), "add spec.source (repoURL, path or chart, targetRevision)",
			"Application %q has neither spec.source nor spec.sources", a.Name)
	}
	for i, src := range a.Spec.GetSources() {
		if src.RepoURL == "" {
			path := "spec.source"
			if a.Spec.HasMultipleSources() {
				path = fmt.Sprintf("spec.sources[%d]", i)
			}
			r.addProblem("parse.schema", a.FieldPos(path), "add repoURL", "Application %q: %s has no repoURL", a.Name, path)
		}
	}
}

// yamlErrorLine splits yaml.v3's "yaml: line 7: …" into 7 and "…".
func yamlErrorLine(err error) (int, string) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscanf(m[1], "%d", &line)
		return line, strings.TrimPrefix(msg, m[0])
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// suggestField finds the JSON field name the author probably meant for an
// unknown field path such as "spec.syncPolicy.automated.selfheal".
func suggestField(t reflect.Type, path string) string {
	segs := splitPath(path)
	if len(segs) == 0 {
		return ""
	}
	for _, s := range segs[:len(segs)-1] {
		t = deref(t)
		if _, ok := s.index(); ok {
			if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
				t = t.Elem()
			}
			continue
		}
		if t.Kind() == reflect.Map {
			t = t.Elem()
			continue
		}
		f, ok := jsonField(t, string(s))
		if !ok {
			return ""
		}
		t = f.Type
	}
	want := string(segs[len(segs)-1])
	best, bestDist := "", 3
	for _, name := range jsonFieldNames(deref(t)) {
		if strings.EqualFold(name, want) {
			return name
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(want)); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("json"), ",")[0]
		if f.Anonymous && (tag == "" || strings.Contains(f.Tag.Get("json"), "inline")) {
			if g, ok := jsonField(deref(f.Type), name); ok {
				return g, true
			}
			continue
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func jsonFieldNames(t reflect.Type) []string {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("json"), ",")[0]
		if f.Anonymous && (tag == "" || strings.Contains(f.Tag.Get("json"), "inline")) {
			out = append(out, jsonFieldNames(deref(f.Type))...)
			continue
		}
		if tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	return out
}

// editDistance is Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// EditDistance is exported for validate's "did you mean" hints.
func EditDistance(a, b string) int { return editDistance(a, b) }

var _ = v1alpha1.ApplicationSourceTypeHelm
