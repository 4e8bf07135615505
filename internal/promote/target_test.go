package promote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tug-gitops/tug/internal/forge"
)

func TestCompleteTargetFromRepoURL(t *testing.T) {
	cases := []struct {
		repoURL string
		in      Target
		want    Target
	}{
		{"https://github.com/tug-gitops/tug.git", Target{}, Target{Kind: "github", Owner: "tug-gitops", Name: "tug"}},
		{"git@github.com:tug-gitops/tug.git", Target{}, Target{Kind: "github", Owner: "tug-gitops", Name: "tug"}},
		// The lab's retargeted copy: Gitea at the URL's host.
		{"http://127.0.0.1:3456/tug-gitops/tug.git", Target{}, Target{Kind: "gitea", URL: "http://127.0.0.1:3456", Owner: "tug-gitops", Name: "tug"}},
		// Gitea under a path prefix.
		{"https://git.example.com/gitea/team/shop", Target{}, Target{Kind: "gitea", URL: "https://git.example.com/gitea", Owner: "team", Name: "shop"}},
		{"https://ghe.example.com/team/shop.git", Target{Kind: "github"}, Target{Kind: "github", URL: "https://ghe.example.com/api/v3/", Owner: "team", Name: "shop"}},
		// Flags win: the canonical github URL, promoted on the lab's Gitea.
		{"https://github.com/tug-gitops/tug.git", Target{Kind: "gitea", URL: "http://127.0.0.1:3000"}, Target{Kind: "gitea", URL: "http://127.0.0.1:3000", Owner: "tug-gitops", Name: "tug"}},
	}
	for _, c := range cases {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "tug.yaml"), []byte("repoURL: "+c.repoURL+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := completeTarget(dir, c.in)
		if err != nil || got != c.want {
			t.Errorf("%s %+v: got %+v (%v), want %+v", c.repoURL, c.in, got, err, c.want)
		}
	}
}

func TestCompleteTargetNeedsSomething(t *testing.T) {
	_, err := completeTarget(t.TempDir(), Target{})
	if err == nil || !strings.Contains(err.Error(), "--owner and --name") {
		t.Fatalf("err = %v", err)
	}
}

func TestTokenNeverInError(t *testing.T) {
	t.Setenv(forge.TokenEnv, "")
	t.Setenv("GITHUB_TOKEN", "")
	_, err := OpenForge(t.Context(), t.TempDir(), Target{Kind: "gitea", URL: "http://127.0.0.1:1", Owner: "o", Name: "n"})
	if err == nil || !strings.Contains(err.Error(), "TUG_FORGE_TOKEN") {
		t.Fatalf("err = %v, want a hint to set TUG_FORGE_TOKEN", err)
	}
}

func TestBranchName(t *testing.T) {
	cases := map[string]string{
		"0.2.0":          "promote/backend-prod-0.2.0",
		"v1.2.3+build.4": "promote/backend-prod-v1.2.3-build.4",
		"sha256:abc":     "promote/backend-prod-sha256-abc",
		"a..b":           "promote/backend-prod-a-b",
	}
	for tag, want := range cases {
		if got := branchName("backend", "prod", tag); got != want {
			t.Errorf("%s: %s, want %s", tag, got, want)
		}
	}
}
