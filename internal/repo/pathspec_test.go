package repo

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// TestPathspecMatchesGitLsFiles: the git files generator's default globbing
// is `git ls-files -- PATTERN` in the repo-server's checkout; tug matches the
// working tree itself, and must select exactly the files real git selects.
func TestPathspecMatchesGitLsFiles(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is required (tug needs it anyway)")
	}
	root := t.TempDir()
	files := []string{
		"apps/web/overlays/dev/config.json", "apps/web/overlays/prod/config.json", "apps/api/dev/config.json",
		"apps/dev/config.json", "config.json", "clusters/a.yaml", "clusters/sub/b.yaml", "clusters/c.yml",
		"x/[a]/f.json", "weird name/config.json",
	}
	for _, f := range files {
		write(t, root, f, "{}\n")
	}
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	git("init", "-q")
	git("add", "-A")
	for _, pattern := range []string{
		"apps/**/dev/config.json", "apps/*/dev/config.json", "apps/*/config.json", "*.json", "config.json",
		"clusters/*.yaml", "clusters", "clusters/", "clusters/?.yaml", "clusters/[ab].yaml", "clusters/[!a].yaml",
		"apps/web", "*/dev/*", "weird name/*", "x/[a]/f.json", "nothing/*",
	} {
		var want []string
		for _, l := range strings.Split(git("ls-files", "--full-name", "-z", "--", pattern), "\x00") {
			if l != "" {
				want = append(want, l)
			}
		}
		match, err := pathspecMatcher(pattern)
		if err != nil {
			t.Fatalf("%q: %v", pattern, err)
		}
		var got []string
		for _, f := range files {
			if match(f) {
				got = append(got, f)
			}
		}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("pattern %q:\n got %q\nwant %q (git ls-files)", pattern, got, want)
		}
	}
}
