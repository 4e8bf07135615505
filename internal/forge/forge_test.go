package forge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                    string
		token, tokenFile, ghTok string
		kind, want              string
	}{
		{"token wins over file", "from-env", file, "", KindGitea, "from-env"},
		{"file, newline trimmed", "", file, "", KindGitea, "from-file"},
		{"file before GITHUB_TOKEN", "", file, "gh", KindGitHub, "from-file"},
		{"GITHUB_TOKEN for github", "", "", "gh", KindGitHub, "gh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(TokenEnv, tc.token)
			t.Setenv(TokenFileEnv, tc.tokenFile)
			t.Setenv("GITHUB_TOKEN", tc.ghTok)
			got, err := Token(tc.kind)
			if err != nil || got != tc.want {
				t.Fatalf("Token(%s) = %q, %v; want %q", tc.kind, got, err, tc.want)
			}
		})
	}
}

func TestTokenErrorsSayWhatToSetAndNeverTheToken(t *testing.T) {
	dir := t.TempDir()
	twoLines := filepath.Join(dir, "two")
	if err := os.WriteFile(twoLines, []byte("secret-one\nsecret-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("secret", 2000)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"", []string{TokenEnv, TokenFileEnv}},
		{filepath.Join(dir, "missing"), []string{TokenFileEnv, "missing", "no such file"}},
		{twoLines, []string{twoLines, "one token and nothing else"}},
		{empty, []string{empty, "one token"}},
		{big, []string{big, "larger than"}},
	} {
		t.Setenv(TokenEnv, "")
		t.Setenv(TokenFileEnv, tc.file)
		t.Setenv("GITHUB_TOKEN", "")
		_, err := Token(KindGitea)
		if err == nil {
			t.Fatalf("%q: no error", tc.file)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not say %q", tc.file, err, w)
			}
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error shows the file's content: %v", tc.file, err)
		}
	}
}
