package validate

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tug-gitops/tug/internal/repo"
)

// TestCorpus runs every broken mini-repository under testdata/bad and asserts
// the exact set of findings (rule and file:line) listed in its EXPECT file.
func TestCorpus(t *testing.T) {
	dirs, err := filepath.Glob("testdata/bad/*")
	if err != nil || len(dirs) < 30 {
		t.Fatalf("want at least 30 corpus repos, got %d (%v)", len(dirs), err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			want := readExpect(t, dir)
			res := validateDir(t, dir)
			var got []string
			for _, f := range res.Findings {
				got = append(got, f.Rule+" "+posLine(f))
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("findings differ\n got: %q\nwant: %q", got, want)
				for _, f := range res.Findings {
					t.Logf("  %s (hint: %s)", f, f.Hint)
				}
			}
		})
	}
}

func posLine(f Finding) string {
	return f.Pos.File + ":" + itoa(f.Pos.Line)
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Replace(string(rune('0'+0)), "0", "", 1)) + formatInt(i)
}

func formatInt(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func readExpect(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "EXPECT"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

func validateDir(t *testing.T, dir string) *Result {
	t.Helper()
	r, err := repo.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestRealRepository: the repository tug lives in must validate clean.
func TestRealRepository(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "infra", "gitops", "root.yaml")); err != nil {
		t.Skip("infra/gitops not present")
	}
	res := validateDir(t, root)
	if res.Apps < 5 {
		t.Errorf("found %d Applications, want at least root + 4 service apps", res.Apps)
	}
	for _, f := range res.Findings {
		t.Errorf("real repository: %s (hint: %s)", f, f.Hint)
	}
}
