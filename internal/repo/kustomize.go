package repo

import (
	"context"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/argoproj/argo-cd/v3/util/git"
	"gopkg.in/yaml.v3"
)

// kustomizationNames are the file names kustomize reads, in its order.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// IsKustomization reports whether a file name is one kustomize reads.
func IsKustomization(name string) bool {
	for _, n := range kustomizationNames {
		if name == n {
			return true
		}
	}
	return false
}

// findPatchFiles marks the files kustomizations name as patches or
// replacement configs: they are fragments kustomize merges into objects, so
// decoding them as whole objects would report false errors ("no
// spec.generators", "unknown field $patch").
func (r *Repo) findPatchFiles(files []string) {
	for _, f := range files {
		if !IsKustomization(filepath.Base(f)) {
			continue
		}
		data, err := readCapped(f)
		if err != nil {
			continue
		}
		var k struct {
			PatchesStrategicMerge []string `yaml:"patchesStrategicMerge"`
			Patches               []struct {
				Path string `yaml:"path"`
			} `yaml:"patches"`
			PatchesJSON6902 []struct {
				Path string `yaml:"path"`
			} `yaml:"patchesJson6902"`
			Replacements []struct {
				Path string `yaml:"path"`
			} `yaml:"replacements"`
		}
		if yaml.Unmarshal(data, &k) != nil {
			continue // kustomize reports it when the kustomization is built
		}
		dir := filepath.Dir(f)
		mark := func(p string) {
			if p == "" || strings.Contains(p, "\n") {
				return // inline patch
			}
			r.PatchFiles[r.Rel(filepath.Join(dir, filepath.FromSlash(p)))] = true
		}
		for _, p := range k.PatchesStrategicMerge {
			mark(p)
		}
		for _, p := range k.Patches {
			mark(p.Path)
		}
		for _, p := range k.PatchesJSON6902 {
			mark(p.Path)
		}
		for _, p := range k.Replacements {
			mark(p.Path)
		}
	}
}

// hasPatchDirective reports a strategic-merge directive ($patch,
// $setElementOrder/…, $retainKeys, $deleteFromPrimitiveList/…) anywhere in
// a document: such a document is a patch fragment.
func hasPatchDirective(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if strings.HasPrefix(n.Content[i].Value, "$") && n.Content[i].Kind == yaml.ScalarNode {
				return true
			}
			if hasPatchDirective(n.Content[i+1]) {
				return true
			}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if hasPatchDirective(c) {
				return true
			}
		}
	}
	return false
}

// originURL reads the origin remote of a git checkout at root (not of a
// repository root is merely inside).
func originURL(root string) (string, string) {
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		return "", ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", root, "config", "--get", "remote.origin.url").Output()
	if err != nil {
		return "", ""
	}
	if u := strings.TrimSpace(string(out)); u != "" {
		return u, "origin remote"
	}
	return "", ""
}

var literalCache sync.Map // absolute path -> []string (lines)

// findLiteral finds the first line, in files' order, holding value.
func findLiteral(root string, files []string, value string) (Position, bool) {
	for _, f := range files {
		abs := f
		if !filepath.IsAbs(f) {
			abs = filepath.Join(root, filepath.FromSlash(f))
		}
		lines, ok := literalCache.Load(abs)
		if !ok {
			data, err := readCapped(abs)
			if err != nil {
				continue
			}
			lines, _ = literalCache.LoadOrStore(abs, strings.Split(string(data), "\n"))
		}
		for i, l := range lines.([]string) {
			if c := strings.Index(l, value); c >= 0 {
				rel, err := filepath.Rel(root, abs)
				if err != nil {
					rel = abs
				}
				return Position{File: path.Clean(filepath.ToSlash(rel)), Line: i + 1, Column: c + 1}, true
			}
		}
	}
	return Position{}, false
}

// SameRepo reports whether two repository URLs name the same repository:
// Argo CD's SameURL, or the same host and path once scheme, user, port,
// case and a .git suffix are set aside (a checkout's ssh origin and the
// https URL Applications use are one repository).
func SameRepo(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if git.SameURL(a, b) {
		return true
	}
	ka, kb := repoKey(a), repoKey(b)
	return ka != "" && ka == kb
}

func repoKey(u string) string {
	u = strings.ToLower(strings.TrimSpace(u))
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	} else if at := strings.Index(u, "@"); at >= 0 && strings.Contains(u[at:], ":") {
		u = strings.Replace(u, ":", "/", 1) // scp-style git@host:org/repo
	}
	if at := strings.LastIndex(u, "@"); at >= 0 {
		u = u[at+1:]
	}
	host, p, _ := strings.Cut(u, "/")
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	p = strings.TrimSuffix(strings.TrimSuffix(p, "/"), ".git")
	if host == "" || p == "" {
		return ""
	}
	return host + "/" + p
}
