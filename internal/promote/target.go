package promote

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tug-gitops/tug/internal/repo"
	"github.com/tug-gitops/tug/internal/yamledit"
)

// envApp is one environment's Application and where its image tag lives.
type envApp struct {
	Env       string
	App       *repo.Application
	ChartPath string // repository-relative chart folder
	ValueFile string // repository-relative path of the last valueFiles entry
	Tag       yamledit.Scalar
	// Digest is the pinned image digest; nil when the file has no such key.
	Digest *yamledit.Scalar
}

// digest is the pinned digest, "" when none.
func (e envApp) digest() string {
	if e.Digest == nil {
		return ""
	}
	return e.Digest.Value
}

func (e envApp) Name() string { return e.App.Name }

// TagAt is "file:line" of the tag, for messages.
func (e envApp) TagAt() string { return fmt.Sprintf("%s:%d", e.ValueFile, e.Tag.Line) }

// findEnvApp locates Application APP-ENV in the loaded repository and reads
// the tag at key, and the digest at digestKey when present, from its last
// value file (the one that wins in Helm's merge, so the one an
// environment's tag belongs in).
func findEnvApp(r *repo.Repo, app, env, key, digestKey string) (envApp, error) {
	name := app + "-" + env
	a := r.Application(name)
	if a == nil {
		return envApp{}, fmt.Errorf("no Application %q in the repository; Applications named %s-*: %s", name, app, strings.Join(appsWithPrefix(r, app+"-"), ", "))
	}
	src := a.Spec.Source
	switch {
	case a.Spec.HasMultipleSources() || src == nil:
		return envApp{}, fmt.Errorf("%s (%s): multi-source Applications are not supported by promote yet", name, a.Pos)
	case src.Chart != "":
		return envApp{}, fmt.Errorf("%s (%s): the chart comes from a Helm repository (%s); promote edits value files in this git repository", name, a.Pos, src.Chart)
	case src.Helm == nil || len(src.Helm.ValueFiles) == 0:
		return envApp{}, fmt.Errorf("%s (%s): spec.source.helm.valueFiles is empty; promote needs a per-environment value file holding %s", name, a.FieldPos("spec.source"), key)
	}
	last := src.Helm.ValueFiles[len(src.Helm.ValueFiles)-1]
	if strings.HasPrefix(last, "$") || path.IsAbs(last) || strings.Contains(last, "://") {
		return envApp{}, fmt.Errorf("%s (%s): value file %q is not a path inside the chart folder", name, a.FieldPos("spec.source.helm.valueFiles"), last)
	}
	rel := path.Clean(path.Join(src.Path, last))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return envApp{}, fmt.Errorf("%s: value file %q leaves the repository", name, last)
	}
	data, err := os.ReadFile(filepath.Join(r.Root, filepath.FromSlash(rel)))
	if err != nil {
		return envApp{}, fmt.Errorf("%s (%s): read value file: %w", name, a.FieldPos("spec.source.helm.valueFiles"), err)
	}
	tag, err := yamledit.Get(data, key)
	if err != nil {
		return envApp{}, fmt.Errorf("%s: %w", rel, err)
	}
	e := envApp{Env: env, App: a, ChartPath: path.Clean(src.Path), ValueFile: rel, Tag: tag}
	if digestKey != "" {
		d, err := yamledit.Get(data, digestKey)
		switch {
		case err == nil:
			e.Digest = &d
		case !errors.Is(err, yamledit.ErrNotFound):
			return envApp{}, fmt.Errorf("%s: %w", rel, err)
		}
	}
	return e, nil
}

func appsWithPrefix(r *repo.Repo, prefix string) []string {
	var names []string
	for _, a := range r.Applications {
		if strings.HasPrefix(a.Name, prefix) {
			names = append(names, a.Name)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return []string{"(none)"}
	}
	return names
}
