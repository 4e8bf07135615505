package render

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/tug-gitops/tug/internal/tools"
)

// KustomizeOptions are what Argo CD passes to `kustomize build`: the
// repository's kustomize.buildOptions (argocd-cm) and the Application's
// spec.source.kustomize fields, which Argo CD applies with `kustomize edit`
// to its checkout before building.
type KustomizeOptions struct {
	// BuildOptions is argocd-cm's kustomize.buildOptions, e.g.
	// "--enable-helm --load-restrictor LoadRestrictionsNone".
	BuildOptions string
	// Edit holds the spec.source.kustomize fields to write into the
	// kustomization before building; nil for none.
	Edit *KustomizeEdit
}

// KustomizeEdit mirrors the spec.source.kustomize fields Argo CD applies.
type KustomizeEdit struct {
	NamePrefix, NameSuffix, Namespace string
	CommonLabels, CommonAnnotations   map[string]string
	Images                            []string // kustomize edit set image syntax: name=newName:tag, name:tag, name@digest
	Components                        []string
	Patches                           []map[string]any
	Replicas                          []map[string]any
}

// KustomizeBuild is a build's objects and the root-independent absolute
// paths of every file kustomize read.
type KustomizeBuild struct {
	Objects []*unstructured.Unstructured
	Files   []string
}

// KustomizeWith builds dir as Argo CD would with opts.
func KustomizeWith(dir string, opts KustomizeOptions) (*KustomizeBuild, error) {
	kopts := krusty.MakeDefaultOptions()
	args := strings.Fields(opts.BuildOptions)
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--enable-helm":
			helm := HelmCommand()
			if helm == "" {
				return nil, fmt.Errorf("kustomize build %s with --enable-helm: no helm program on PATH or in the tug cache; install Helm 3 (helmCharts run `helm template`)", dir)
			}
			kopts.PluginConfig.HelmConfig.Enabled = true
			kopts.PluginConfig.HelmConfig.Command = helm
		case a == "--load-restrictor" && i+1 < len(args):
			i++
			if args[i] == "LoadRestrictionsNone" {
				kopts.LoadRestrictions = types.LoadRestrictionsNone
			}
		case a == "--load-restrictor=LoadRestrictionsNone":
			kopts.LoadRestrictions = types.LoadRestrictionsNone
		}
	}
	fs := &recordingFS{FileSystem: filesys.MakeFsOnDisk(), read: map[string]bool{}}
	if opts.Edit != nil {
		if err := fs.editKustomization(dir, opts.Edit); err != nil {
			return nil, err
		}
	}
	resMap, err := krusty.MakeKustomizer(kopts).Run(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	b := &KustomizeBuild{}
	for _, r := range resMap.Resources() {
		obj, err := resourceObject(r)
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		b.Objects = append(b.Objects, obj)
	}
	for f := range fs.read {
		b.Files = append(b.Files, f)
	}
	sort.Strings(b.Files)
	return b, nil
}

// HelmCommand is the helm program kustomize's helmCharts inflator runs:
// helm on PATH, else one tug's tool builder keeps under
// $XDG_CACHE_HOME/tug/bin (helm or helm-<key>/helm); "" when there is none.
func HelmCommand() string {
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	bin := tools.DefaultCacheDir()
	candidates := []string{filepath.Join(bin, "helm")}
	if keyed, err := filepath.Glob(filepath.Join(bin, "helm-*", "helm")); err == nil {
		candidates = append(candidates, keyed...)
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// recordingFS is the on-disk file system with the files kustomize reads
// recorded and, for spec.source.kustomize edits, the kustomization replaced
// by an edited copy in memory (Argo CD edits its own checkout; tug never
// writes to the repository).
type recordingFS struct {
	filesys.FileSystem
	mu       sync.Mutex
	read     map[string]bool
	override map[string][]byte
}

func (f *recordingFS) ReadFile(path string) ([]byte, error) {
	f.mu.Lock()
	f.read[path] = true
	data, ok := f.override[path]
	f.mu.Unlock()
	if ok {
		return data, nil
	}
	return f.FileSystem.ReadFile(path)
}

func (f *recordingFS) editKustomization(dir string, e *KustomizeEdit) error {
	path := ""
	for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if p := filepath.Join(dir, n); f.Exists(p) {
			path = p
			break
		}
	}
	k := map[string]any{}
	if path == "" {
		// Argo CD runs `kustomize edit` in a directory without a
		// kustomization only when it has one; a directory source never
		// reaches here.
		return fmt.Errorf("kustomize build %s: no kustomization file", dir)
	}
	data, err := f.FileSystem.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	set := func(key, v string) {
		if v != "" {
			k[key] = v
		}
	}
	set("namePrefix", e.NamePrefix)
	set("nameSuffix", e.NameSuffix)
	set("namespace", e.Namespace)
	mergeStrings(k, "commonLabels", e.CommonLabels)
	mergeStrings(k, "commonAnnotations", e.CommonAnnotations)
	for _, c := range e.Components {
		k["components"] = append(asList(k["components"]), c)
	}
	for _, p := range e.Patches {
		k["patches"] = append(asList(k["patches"]), p)
	}
	for _, r := range e.Replicas {
		k["replicas"] = append(asList(k["replicas"]), r)
	}
	for _, img := range e.Images {
		k["images"] = append(asList(k["images"]), imageEdit(img))
	}
	out, err := yaml.Marshal(k)
	if err != nil {
		return err
	}
	f.override = map[string][]byte{path: out}
	return nil
}

func mergeStrings(k map[string]any, key string, add map[string]string) {
	if len(add) == 0 {
		return
	}
	m, _ := k[key].(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	for a, b := range add {
		m[a] = b
	}
	k[key] = m
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// imageEdit parses `kustomize edit set image` syntax: [old=]name[:tag|@digest].
func imageEdit(s string) map[string]any {
	old, img, found := strings.Cut(s, "=")
	if !found {
		img = old
	}
	out := map[string]any{}
	name := img
	if i := strings.Index(img, "@"); i >= 0 {
		name, out["digest"] = img[:i], img[i+1:]
	} else if i := strings.LastIndex(img, ":"); i > strings.LastIndex(img, "/") {
		name, out["newTag"] = img[:i], img[i+1:]
	}
	if found {
		out["name"], out["newName"] = old, name
	} else {
		out["name"] = name
	}
	return out
}

// RemoteRef is something a kustomization needs from the network: a remote
// base or component, or a helmCharts chart not vendored under chartHome.
type RemoteRef struct {
	Kustomization string // absolute path of the kustomization naming it
	URL           string
	// HelmChart: a helmCharts entry, which kustomize's inflator would
	// `helm pull` into chartHome, inside the kustomization's directory.
	HelmChart bool
	ChartHome string // the chartHome it would pull into, relative to the kustomization
}

// KustomizeRemoteRefs walks the kustomization in dir and the local
// kustomizations it includes, and lists what would be fetched over the
// network (kustomize would run git or helm pull for them).
func KustomizeRemoteRefs(dir string) []RemoteRef {
	var out []RemoteRef
	walkKustomizations(dir, func(kpath string, k *kustomizationRefs) {
		for _, r := range append(append(k.Resources, k.Bases...), k.Components...) {
			if IsRemoteKustomizeRef(r) {
				out = append(out, RemoteRef{Kustomization: kpath, URL: r})
			}
		}
		home := k.HelmGlobals.ChartHome
		if home == "" {
			home = "charts"
		}
		for _, c := range k.HelmCharts {
			if c.Repo == "" {
				continue
			}
			vendored := false
			for _, name := range []string{c.Name, c.Name + "-" + c.Version} {
				if _, err := os.Stat(filepath.Join(filepath.Dir(kpath), home, name, "Chart.yaml")); err == nil {
					vendored = true
				}
			}
			if !vendored {
				out = append(out, RemoteRef{Kustomization: kpath, URL: strings.TrimSuffix(c.Repo, "/") + "/" + c.Name + " " + c.Version, HelmChart: true, ChartHome: home})
			}
		}
	})
	return out
}

// KustomizeHelmCharts lists the kustomizations (dir's and the local ones it
// includes) that inflate Helm charts with helmCharts: kustomize builds
// those only when given --enable-helm.
func KustomizeHelmCharts(dir string) []string {
	var out []string
	walkKustomizations(dir, func(kpath string, k *kustomizationRefs) {
		if len(k.HelmCharts) > 0 {
			out = append(out, kpath)
		}
	})
	return out
}

// kustomizationRefs is what a kustomization names outside itself.
type kustomizationRefs struct {
	Resources  []string `json:"resources"`
	Bases      []string `json:"bases"`
	Components []string `json:"components"`
	HelmCharts []struct {
		Name    string `json:"name"`
		Repo    string `json:"repo"`
		Version string `json:"version"`
	} `json:"helmCharts"`
	HelmGlobals struct {
		ChartHome string `json:"chartHome"`
	} `json:"helmGlobals"`
}

// walkKustomizations calls fn for the kustomization in dir and for every
// local kustomization it includes, each once. Unreadable ones are skipped:
// the build reports them.
func walkKustomizations(dir string, fn func(kpath string, k *kustomizationRefs)) {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(d string) {
		if seen[d] {
			return
		}
		seen[d] = true
		kpath := ""
		for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
			if _, err := os.Stat(filepath.Join(d, n)); err == nil {
				kpath = filepath.Join(d, n)
				break
			}
		}
		if kpath == "" {
			return
		}
		data, err := os.ReadFile(kpath)
		if err != nil {
			return
		}
		var k kustomizationRefs
		if yaml.Unmarshal(data, &k) != nil {
			return
		}
		fn(kpath, &k)
		for _, r := range append(append(k.Resources, k.Bases...), k.Components...) {
			if IsRemoteKustomizeRef(r) {
				continue
			}
			p := filepath.Join(d, filepath.FromSlash(r))
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				walk(p)
			}
		}
	}
	walk(dir)
}

// IsRemoteKustomizeRef reports whether a resources/components entry is a
// URL kustomize fetches (git or HTTP) rather than a local path.
func IsRemoteKustomizeRef(s string) bool {
	switch {
	case strings.Contains(s, "://"), strings.HasPrefix(s, "git@"), strings.HasPrefix(s, "git::"),
		strings.Contains(s, "?ref="), strings.Contains(s, "?version="), strings.Contains(s, ".git//"):
		return true
	}
	for _, host := range []string{"github.com/", "gitlab.com/", "bitbucket.org/"} {
		if strings.HasPrefix(s, host) {
			return true
		}
	}
	return false
}
