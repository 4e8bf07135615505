package connect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tug-gitops/tug/internal/forge"
)

func TestCompleteFromRepoURL(t *testing.T) {
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
		// The lab exports only TUG_FORGE_URL: a forge URL that is not
		// GitHub's makes the kind gitea without --forge.
		{"https://github.com/tug-gitops/tug.git", Target{URL: "http://127.0.0.1:3000"}, Target{Kind: "gitea", URL: "http://127.0.0.1:3000", Owner: "tug-gitops", Name: "tug"}},
		// GitHub's own API URL, and an Enterprise one, stay github.
		{"https://github.com/tug-gitops/tug.git", Target{URL: "https://api.github.com/"}, Target{Kind: "github", URL: "https://api.github.com/", Owner: "tug-gitops", Name: "tug"}},
		{"https://ghe.example.com/team/shop.git", Target{URL: "https://ghe.example.com/api/v3/"}, Target{Kind: "github", URL: "https://ghe.example.com/api/v3/", Owner: "team", Name: "shop"}},
	}
	for _, c := range cases {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "tug.yaml"), []byte("repoURL: "+c.repoURL+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Complete(dir, c.in)
		if err != nil || got != c.want {
			t.Errorf("%s %+v: got %+v (%v), want %+v", c.repoURL, c.in, got, err, c.want)
		}
	}
}

func TestCompleteNeedsSomething(t *testing.T) {
	_, err := Complete(t.TempDir(), Target{})
	if err == nil || !strings.Contains(err.Error(), "--owner and --name") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenWithoutTokenSaysWhatToSet(t *testing.T) {
	t.Setenv(forge.TokenEnv, "")
	t.Setenv(forge.TokenFileEnv, "")
	t.Setenv("GITHUB_TOKEN", "")
	_, err := Open(t.Context(), t.TempDir(), Target{Kind: "gitea", URL: "http://127.0.0.1:1", Owner: "o", Name: "n"})
	if err == nil || !strings.Contains(err.Error(), forge.TokenEnv) || !strings.Contains(err.Error(), forge.TokenFileEnv) {
		t.Fatalf("err = %v, want a hint to set %s or %s", err, forge.TokenEnv, forge.TokenFileEnv)
	}
}
