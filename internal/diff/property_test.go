package diff

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A revision compared with itself is always empty, whatever the values say:
// rendering is deterministic and pairing finds every resource again. The
// fuzzer writes arbitrary YAML as the prod values of the backend chart (a
// render error must be equal on both sides too).
func FuzzRevisionAgainstItselfIsEmpty(f *testing.F) {
	for _, seed := range []string{
		"replicaCount: 3\n",
		"image:\n  tag: \"9.9.9\"\nextra: {a: [1, 2, {b: c}]}\n",
		"resources: null\n",
		"replicaCount: [\n", // invalid YAML: a render error, the same at both
		"podSecurityContext: {runAsUser: 1}\nenvironment: \"\\u00e9\"\n",
	} {
		f.Add(seed)
	}
	dir := newRepo(f)
	f.Fuzz(func(t *testing.T, values string) {
		if err := os.WriteFile(filepath.Join(dir, "charts", "backend", "values-prod.yaml"), []byte(values), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, err := Render(ctx, dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Render(ctx, dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Compare(a, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Empty() {
			t.Fatalf("values %q: the same tree differs from itself: %v\n%s", values, appNames(res), text(t, res))
		}
		if len(a.Apps) != 5 || res.Unchanged != 5 {
			t.Fatalf("%d apps rendered, %d unchanged; want 5", len(a.Apps), res.Unchanged)
		}
	})
}

// The same property through git: a commit against itself.
func TestCommitAgainstItselfIsEmpty(t *testing.T) {
	dir := newRepo(t)
	res := runDiff(t, dir, "HEAD", "HEAD")
	if !res.Empty() || res.Unchanged != 5 || len(res.ChangedFiles) != 0 {
		t.Fatalf("HEAD against HEAD: %v, %d unchanged, changed files %v", appNames(res), res.Unchanged, res.ChangedFiles)
	}
}
