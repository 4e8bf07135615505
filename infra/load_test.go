package infra

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/tug-gitops/tug/internal/config"
)

// repoRoot is the repository root, relative to this package's folder.
const repoRoot = ".."

// doc is one YAML document of a manifest file, with where it came from so a
// failure names file:line.
type doc struct {
	file string // path relative to the repo root
	line int    // first line of the document
	data []byte
}

func (d doc) where() string { return fmt.Sprintf("%s:%d", d.file, d.line) }

// gitopsObjects is everything found under infra/gitops, decoded strictly.
type gitopsObjects struct {
	apps     []*v1alpha1.Application
	projects map[string]*v1alpha1.AppProject
	where    map[metav1.Object]string // object -> file:line
	files    map[metav1.Object]string // object -> file (repo-relative)
}

// splitDocuments splits a multi-document YAML file on "---" lines, keeping
// each document's first line number, and drops documents that are only
// comments or whitespace.
func splitDocuments(file string, data []byte) []doc {
	var docs []doc
	var cur bytes.Buffer
	start := 1
	flush := func() {
		if hasContent(cur.Bytes()) {
			docs = append(docs, doc{file: file, line: start, data: bytes.Clone(cur.Bytes())})
		}
		cur.Reset()
	}
	for i, line := range strings.SplitAfter(string(data), "\n") {
		if strings.TrimRight(line, " \t\r\n") == "---" {
			flush()
			start = i + 2
			continue
		}
		cur.WriteString(line)
	}
	flush()
	return docs
}

func hasContent(b []byte) bool {
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

// decodeStrict decodes one document into an Argo CD type, failing on any
// field the type does not have (a misspelled `selfheal` is an error, not a
// silently ignored key) and on duplicate keys.
func decodeStrict(d doc) (metav1.Object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(d.data, &tm); err != nil {
		return nil, fmt.Errorf("%s: %w", d.where(), err)
	}
	var obj metav1.Object
	switch {
	case tm.APIVersion == "argoproj.io/v1alpha1" && tm.Kind == "Application":
		obj = &v1alpha1.Application{}
	case tm.APIVersion == "argoproj.io/v1alpha1" && tm.Kind == "AppProject":
		obj = &v1alpha1.AppProject{}
	default:
		return nil, fmt.Errorf("%s: unexpected %s %s: infra/gitops holds only argoproj.io/v1alpha1 Application and AppProject", d.where(), tm.APIVersion, tm.Kind)
	}
	// Not yaml.UnmarshalStrict: it decodes with encoding/json, which matches
	// keys case-insensitively, so `selfheal` would fill SelfHeal. kjson is
	// what the API server uses for fieldValidation=Strict: case-sensitive,
	// unknown and duplicate fields reported.
	js, err := yaml.YAMLToJSONStrict(d.data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.where(), err)
	}
	strictErrs, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", d.where(), tm.Kind, err)
	}
	if len(strictErrs) > 0 {
		return nil, fmt.Errorf("%s: %s %s: %w (field names are case-sensitive; see Argo CD's %s spec)", d.where(), tm.Kind, obj.GetName(), errors.Join(strictErrs...), tm.Kind)
	}
	return obj, nil
}

// loadGitops reads every .yaml/.yml file under dir (repo-relative).
func loadGitops(t *testing.T, dir string) *gitopsObjects {
	t.Helper()
	objs := &gitopsObjects{
		projects: map[string]*v1alpha1.AppProject{},
		where:    map[metav1.Object]string{},
		files:    map[metav1.Object]string{},
	}
	var errs []error
	err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || !isYAML(path) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		rel = filepath.ToSlash(rel)
		for _, d := range splitDocuments(rel, data) {
			obj, err := decodeStrict(d)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			objs.where[obj] = d.where()
			objs.files[obj] = rel
			switch o := obj.(type) {
			case *v1alpha1.Application:
				objs.apps = append(objs.apps, o)
			case *v1alpha1.AppProject:
				if prev, dup := objs.projects[o.Name]; dup {
					errs = append(errs, fmt.Errorf("%s: AppProject %q is also defined at %s", d.where(), o.Name, objs.where[prev]))
				}
				objs.projects[o.Name] = o
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	sort.Slice(objs.apps, func(i, j int) bool { return objs.apps[i].Name < objs.apps[j].Name })
	return objs
}

func isYAML(path string) bool {
	ext := filepath.Ext(path)
	return ext == ".yaml" || ext == ".yml"
}

func loadConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RepoURL == "" {
		t.Fatalf("%s has no repoURL: every Argo CD object's repo URL is checked against it", config.FileName)
	}
	return cfg
}
