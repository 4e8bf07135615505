// Package repo loads a GitOps repository from disk: every Argo CD
// Application, AppProject and ApplicationSet in its YAML files, decoded
// strictly into Argo CD's own Go types with file:line positions, plus the
// cluster Secrets and CRDs that validation needs. Loading never stops at the
// first bad file: problems are collected with positions for `tug validate`.
package repo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/config"
)

// MaxFileSize is the largest YAML file Load reads; bigger files become a
// parse.file problem instead of being read into memory.
const MaxFileSize = 4 << 20

// Position is a place in a file; File is relative to the repository root
// with forward slashes. Line and Column are 1-based; 0 means unknown.
type Position struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

func (p Position) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Application is an Argo CD Application with where it was declared.
type Application struct {
	v1alpha1.Application
	Pos Position
	// Node is the YAML document (or, for generated apps, the ApplicationSet
	// document); use FieldPos to locate fields.
	Node *yaml.Node
	// GeneratedBy is the ApplicationSet that produced this Application, if any.
	GeneratedBy *ApplicationSet
	nodePrefix  string
}

// FieldPos returns the position of a field such as "spec.destination.server",
// or of its nearest existing ancestor.
func (a *Application) FieldPos(path string) Position {
	return fieldPos(a.Pos, a.Node, a.nodePrefix+path)
}

// AppProject is an Argo CD AppProject with where it was declared.
type AppProject struct {
	v1alpha1.AppProject
	Pos  Position
	Node *yaml.Node
}

// FieldPos returns the position of a field, or of its nearest ancestor.
func (p *AppProject) FieldPos(path string) Position { return fieldPos(p.Pos, p.Node, path) }

// ApplicationSet is an Argo CD ApplicationSet with where it was declared.
type ApplicationSet struct {
	v1alpha1.ApplicationSet
	Pos  Position
	Node *yaml.Node
}

// FieldPos returns the position of a field, or of its nearest ancestor.
func (s *ApplicationSet) FieldPos(path string) Position { return fieldPos(s.Pos, s.Node, path) }

// Object is any other Kubernetes object found in the repository that
// validation uses (CRDs as extra schemas, Argo CD cluster Secrets).
type Object struct {
	*unstructured.Unstructured
	Pos Position
}

// Problem is something wrong found while loading; validate reports it as a
// finding with the same rule ID.
type Problem struct {
	Rule    string
	Pos     Position
	Message string
	Hint    string
}

// Repo is a loaded GitOps repository.
type Repo struct {
	// Root is the absolute path of the repository root.
	Root   string
	Config *config.Config

	Applications    []*Application // declared ones first, then ApplicationSet-generated ones
	Projects        []*AppProject
	ApplicationSets []*ApplicationSet
	CRDs            []*Object
	ClusterSecrets  []*Object

	// Problems are load-time findings (unparsable YAML, schema errors, …).
	Problems []Problem
}

// Load reads every .yaml/.yml file under root. It returns an error only when
// root itself cannot be read; everything else becomes a Problem.
func Load(root string) (*Repo, error) {
	return LoadPaths(root, root)
}

// LoadPaths loads the repository at root but only scans the given paths
// (files or directories inside root) for objects.
func LoadPaths(root string, paths ...string) (*Repo, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("repository root: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("repository root %s is not a directory", root)
	}
	r := &Repo{Root: abs}
	r.loadConfig()
	for _, p := range paths {
		pa, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if err := r.walk(pa); err != nil {
			return nil, err
		}
	}
	r.expandApplicationSets()
	return r, nil
}

// Application returns the Application with that name (declared or
// generated), or nil.
func (r *Repo) Application(name string) *Application {
	for _, a := range r.Applications {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Project returns the AppProject with that name, or nil.
func (r *Repo) Project(name string) *AppProject {
	for _, p := range r.Projects {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Rel turns an absolute path into a root-relative slash path.
func (r *Repo) Rel(path string) string {
	rel, err := filepath.Rel(r.Root, path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	return filepath.ToSlash(rel)
}

func (r *Repo) addProblem(rule string, pos Position, hint, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Rule: rule, Pos: pos, Message: fmt.Sprintf(format, args...), Hint: hint})
}

func (r *Repo) loadConfig() {
	cfg, err := config.Load(r.Root)
	if err != nil {
		r.addProblem("config.invalid", Position{File: config.FileName, Line: config.ErrorLine(err)},
			"fix tug.yaml; until then the defaults are used (in-cluster only, environments dev and prod)", "%v", err)
		cfg = config.Default()
	}
	r.Config = cfg
}

// walk visits YAML files under dir. Symlinked directories are not followed
// (WalkDir never does), which rules out symlink loops.
func (r *Repo) walk(start string) error {
	return filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == start {
				return fmt.Errorf("read %s: %w", start, err)
			}
			r.addProblem("parse.file", Position{File: r.Rel(path)}, "check the file's permissions", "cannot read: %v", err)
			return nil
		}
		if d.IsDir() {
			if path != start && skipDir(path, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		ext := strings.ToLower(filepath.Ext(path))
		if ext != ".yaml" && ext != ".yml" {
			return nil
		}
		r.loadFile(path)
		return nil
	})
}

// skipDir leaves out VCS metadata, hidden directories, test fixtures and Helm
// chart templates (Go templates, not YAML).
func skipDir(path, name string) bool {
	if strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" {
		return true
	}
	if name == "templates" {
		if _, err := os.Stat(filepath.Join(filepath.Dir(path), "Chart.yaml")); err == nil {
			return true
		}
	}
	return false
}

func (r *Repo) loadFile(path string) {
	rel := r.Rel(path)
	data, err := readCapped(path)
	if err != nil {
		r.addProblem("parse.file", Position{File: rel}, "remove the file or give it a .yaml extension only if it is YAML", "%v", err)
		return
	}
	if i := bytes.IndexByte(data, 0); i >= 0 || !utf8.Valid(data) {
		r.addProblem("parse.file", Position{File: rel, Line: 1}, "YAML files must be UTF-8 text; remove the binary file or rename it",
			"binary content in a YAML file (NUL byte or invalid UTF-8)")
		return
	}
	r.parseDocuments(rel, data)
}

func readCapped(path string) ([]byte, error) {
	st, err := os.Stat(path) // follows a symlinked file; loops fail here with ELOOP
	if err != nil {
		return nil, fmt.Errorf("cannot read: %v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("file is %d bytes, larger than the %d-byte limit tug reads", st.Size(), MaxFileSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read: %v", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file grew past the %d-byte limit while reading", MaxFileSize)
	}
	return data, nil
}

// ParseFile decodes one file's content as if it were at rel inside the
// repository. It is what Load does per file; exported for fuzzing and tests.
func (r *Repo) ParseFile(rel string, data []byte) { r.parseDocuments(rel, data) }

func (r *Repo) parseDocuments(rel string, data []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := decodeSafely(dec, &doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			se := locateYAMLError(data, err)
			r.addProblem("parse.yaml", Position{File: rel, Line: se.Line, Column: se.Column}, "fix the YAML syntax; `yq . FILE` shows the same error",
				"invalid YAML: %s", se.Message)
			return // the decoder cannot resume after a syntax error
		}
		r.parseDocument(rel, &doc)
	}
}

// decodeSafely turns a panic inside the YAML parser into an error: bad input
// must end in a finding, never a crash.
func decodeSafely(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("YAML parser failed: %v", p)
		}
	}()
	return dec.Decode(n)
}

func (r *Repo) parseDocument(rel string, doc *yaml.Node) {
	if len(doc.Content) == 0 {
		return
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return // not a Kubernetes object (e.g. a list of values)
	}
	pos := Position{File: rel, Line: top.Line, Column: top.Column}
	apiVersion, kind := scalarField(top, "apiVersion"), scalarField(top, "kind")
	group := apiVersion
	if i := strings.IndexByte(apiVersion, '/'); i >= 0 {
		group = apiVersion[:i]
	}
	switch {
	case group == "argoproj.io" && (kind == "Application" || kind == "AppProject" || kind == "ApplicationSet"):
		r.decodeArgo(rel, pos, doc, apiVersion, kind)
	case kind == "CustomResourceDefinition" && group == "apiextensions.k8s.io":
		r.keepObject(&r.CRDs, pos, doc)
	case kind == "Secret" && apiVersion == "v1" && isClusterSecret(top):
		r.keepObject(&r.ClusterSecrets, pos, doc)
	}
}

func (r *Repo) keepObject(dst *[]*Object, pos Position, doc *yaml.Node) {
	v, err := nodeToJSONValue(doc)
	if err != nil {
		r.addProblem("parse.yaml", pos, "", "%v", err)
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	*dst = append(*dst, &Object{Unstructured: &unstructured.Unstructured{Object: m}, Pos: pos})
}

func isClusterSecret(top *yaml.Node) bool {
	meta := mappingValue(top, "metadata")
	return scalarField(mappingValue(meta, "labels"), "argocd.argoproj.io/secret-type") == "cluster"
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalarField(n *yaml.Node, key string) string {
	v := mappingValue(n, key)
	if v == nil || v.Kind != yaml.ScalarNode {
		return ""
	}
	return v.Value
}

// fieldPos resolves a field path in node to a position, falling back to def.
func fieldPos(def Position, node *yaml.Node, path string) Position {
	n, _ := lookup(node, path)
	if n == nil || n.Line == 0 {
		return def
	}
	return Position{File: def.File, Line: n.Line, Column: n.Column}
}

// sortedKeys is used where map iteration order would make output unstable.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
