package repo

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the per-file loader. Seeds are every YAML
// file of validate's broken-repository corpus. Any input must end in objects
// or Problems, never a panic or a hang.
func FuzzLoad(f *testing.F) {
	_ = filepath.WalkDir("../validate/testdata/bad", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			if data, err := os.ReadFile(path); err == nil {
				f.Add(data)
			}
		}
		return nil
	})
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nspec:\n  generators:\n  - list:\n      elements: [{a: 1}]\n  template: {metadata: {name: '{{a}}'}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Repo{Root: t.TempDir()}
		r.loadConfig()
		r.ParseFile("fuzz.yaml", data)
		r.expandApplicationSets()
		for _, p := range r.Problems {
			if p.Rule == "" || p.Pos.File == "" {
				t.Fatalf("problem without rule or file: %+v", p)
			}
		}
	})
}
