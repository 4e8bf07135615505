package giteaserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// ModuleVersion is the Gitea release tug builds (lab/tools/gitea/go.mod);
// its module source provides the static files.
const ModuleVersion = "v1.26.0"

// FindStaticRoot locates the gitea module's source in the Go module cache,
// preferring ModuleVersion: building the binary put it there.
func FindStaticRoot() (string, error) {
	cache := goModCache()
	if cache == "" {
		return "", errors.New("giteaserver: cannot find the Go module cache for Gitea's static files; set Options.StaticRoot")
	}
	want := filepath.Join(cache, "code.gitea.io", "gitea@"+ModuleVersion)
	if hasLocale(want) {
		return want, nil
	}
	others, _ := filepath.Glob(filepath.Join(cache, "code.gitea.io", "gitea@v*"))
	sort.Sort(sort.Reverse(sort.StringSlice(others)))
	for _, dir := range others {
		if hasLocale(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("giteaserver: Gitea's static files (options/locale) are not at %s; run `go mod download code.gitea.io/gitea@%s` in lab/tools/gitea, or set Options.StaticRoot", want, ModuleVersion)
}

func hasLocale(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "options", "locale", "locale_en-US.json"))
	return err == nil
}

func goModCache() string {
	if d := os.Getenv("GOMODCACHE"); d != "" {
		return d
	}
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.Join(filepath.SplitList(p)[0], "pkg", "mod")
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); d != "" {
			return d
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "go", "pkg", "mod")
	}
	return ""
}
