package repo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/argoproj/argo-cd/v3/applicationset/controllers/template"
	"github.com/argoproj/argo-cd/v3/applicationset/generators"
	"github.com/argoproj/argo-cd/v3/applicationset/utils"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/sirupsen/logrus"

	"github.com/tug-gitops/tug/internal/argocd"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ControllerNamespace is where Argo CD (and its cluster Secrets and
// AppProjects) live when a manifest does not say.
const ControllerNamespace = argocd.Namespace

// liveGeneratorRE finds generators that need a live service (an SCM API, a
// cluster's duck-typed resource, a plugin server), nested or not.
var liveGeneratorRE = regexp.MustCompile(`"(scmProvider|pullRequest|clusterDecisionResource|plugin)":`)

// expandApplicationSets adds the Applications every declared ApplicationSet
// generates.
func (r *Repo) expandApplicationSets() {
	for _, s := range r.ApplicationSets {
		apps, problems := r.Expand(s)
		r.Applications = append(r.Applications, apps...)
		r.Problems = append(r.Problems, problems...)
	}
}

// Expand generates the Applications an ApplicationSet produces, with the
// ApplicationSet controller's own generators and template code: list, git
// (directories and files, read from the working tree at Root), clusters
// (tug.yaml clusters, cluster Secrets in the repository, in-cluster),
// matrix and merge. Generators that need a live service are reported, not
// guessed.
func (r *Repo) Expand(s *ApplicationSet) ([]*Application, []Problem) {
	g := r.generators()
	var apps []*Application
	var problems []Problem
	add := func(rule string, pos Position, hint, format string, args ...any) {
		problems = append(problems, Problem{Rule: rule, Pos: pos, Hint: hint, Message: fmt.Sprintf(format, args...)})
	}
	for gi, gen := range s.Spec.Generators {
		genPath := fmt.Sprintf("spec.generators[%d]", gi)
		raw, _ := json.Marshal(gen)
		if m := liveGeneratorRE.FindSubmatch(raw); m != nil {
			add("appset.generator-unsupported", s.FieldPos(genPath),
				"this generator asks a live service; its Applications are not validated offline",
				"ApplicationSet %q: generator %d uses a %s generator, which needs a live service", s.Name, gi, m[1])
			continue
		}
		results, err := transform(gen, g, s)
		var remote errRemoteRepo
		switch {
		case errors.As(err, &remote):
			add("appset.generator-unsupported", s.FieldPos(genPath),
				"only this repository's working tree is read offline",
				"ApplicationSet %q: generator %d reads %s, which is not this repository", s.Name, gi, remote.url)
			continue
		case err != nil:
			add("appset.render-failed", s.FieldPos(genPath), "Argo CD's ApplicationSet controller fails the same way",
				"ApplicationSet %q: generator %d: %v", s.Name, gi, err)
			continue
		}
		for _, res := range results {
			rendered := renderAllParams(s, res.Template, res.Params)
			for pi, p := range res.Params {
				app, err := rendered[pi].app, rendered[pi].err
				element := describeParams(gen, p, pi)
				if err != nil {
					add("appset.render-failed", s.FieldPos(genPath), "check the template's {{…}} parameters against the generator's",
						"ApplicationSet %q, %s: %v", s.Name, element, err)
					continue
				}
				app.APIVersion, app.Kind = "argoproj.io/v1alpha1", "Application"
				a := &Application{Application: *app, Pos: s.Pos, Node: s.Node, GeneratedBy: s, Element: element,
					RenderedFrom: s.RenderedFrom, nodePrefix: "spec.template."}
				a.Origins = g.origins(p)
				apps = append(apps, a)
			}
		}
	}
	return apps, problems
}

// transform runs the controller's Transform, turning a panic in generator
// code on odd input into an error.
func transform(gen v1alpha1.ApplicationSetGenerator, g *generatorSet, s *ApplicationSet) (res []generators.TransformResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("generator failed: %v", p)
		}
	}()
	return generators.Transform(gen, g.all, s.Spec.Template, &s.ApplicationSet, map[string]any{}, g.client)
}

type renderedParams struct {
	app *v1alpha1.Application
	err error
}

// renderAllParams renders parameter sets on all CPUs, in order: Argo CD's
// renderer builds a template with every sprig function for each string
// field, which dominates expanding a large generator.
func renderAllParams(s *ApplicationSet, tmpl v1alpha1.ApplicationSetTemplate, params []map[string]any) []renderedParams {
	out := make([]renderedParams, len(params))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(params)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i].app, out[i].err = renderParamsSafely(s, tmpl, params[i])
			}
		}()
	}
	for i := range params {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func renderParamsSafely(s *ApplicationSet, tmpl v1alpha1.ApplicationSetTemplate, p map[string]any) (app *v1alpha1.Application, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("template rendering failed: %v", r)
		}
	}()
	return renderParams(s, tmpl, p)
}

// renderParams renders one parameter set as the controller's
// GenerateApplications does; templatePatch goes through that very function
// with the parameter set as a one-element list generator.
func renderParams(s *ApplicationSet, tmpl v1alpha1.ApplicationSetTemplate, p map[string]any) (*v1alpha1.Application, error) {
	if s.Spec.TemplatePatch == nil {
		app, err := renderTemplate(template.GetTempApplication(tmpl), s.Spec.SyncPolicy, p, s.Spec.GoTemplate, s.Spec.GoTemplateOptions)
		if err != nil {
			return nil, err
		}
		app.Namespace = s.Namespace // as the controller does: apps live in the appset's namespace
		return app, nil
	}
	elem, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	one := s.ApplicationSet.DeepCopy()
	one.Spec.Template = tmpl
	one.Spec.Generators = []v1alpha1.ApplicationSetGenerator{{List: &v1alpha1.ListGenerator{Elements: []apiextJSON{{Raw: elem}}}}}
	log := logrus.NewEntry(quietLogger)
	apps, _, err := template.GenerateApplications(log, *one, map[string]generators.Generator{"List": generators.NewListGenerator()}, &utils.Render{}, nil)
	if err != nil {
		return nil, err
	}
	if len(apps) != 1 {
		return nil, fmt.Errorf("templatePatch produced %d Applications", len(apps))
	}
	return &apps[0], nil
}

// describeParams names what a parameter set was generated for.
func describeParams(gen v1alpha1.ApplicationSetGenerator, p map[string]any, i int) string {
	flat := map[string]string{}
	flattenInto(flat, "", p)
	var parts []string
	switch {
	case flat["path.filename"] != "":
		parts = append(parts, "file "+strings.TrimPrefix(flat["path"]+"/", "./")+flat["path.filename"])
	case flat["path.path"] != "" && flat["path.filename"] == "" && flat["path"] == "":
		parts = append(parts, "directory "+flat["path.path"])
	case flat["path"] != "":
		parts = append(parts, "directory "+flat["path"])
	}
	if flat["path.path"] != "" && flat["path.filename"] != "" {
		parts = append(parts[:0], "file "+flat["path.path"]+"/"+flat["path.filename"])
	}
	if flat["server"] != "" {
		parts = append(parts, fmt.Sprintf("cluster %s (%s)", flat["name"], flat["server"]))
	}
	if len(parts) == 0 {
		if gen.List != nil {
			return fmt.Sprintf("list element %d", i)
		}
		return fmt.Sprintf("parameter set %d", i)
	}
	return strings.Join(parts, ", ")
}

func flattenInto(out map[string]string, prefix string, v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flattenInto(out, key, x)
		}
	case string:
		out[prefix] = t
	default:
		if t != nil {
			out[prefix] = fmt.Sprint(t)
		}
	}
}

// generatorSet is the ApplicationSet controller's generator map over this
// repository: a repository service reading the working tree, and a
// Kubernetes client that holds the repository's AppProjects and cluster
// Secrets (plus tug.yaml's clusters as Secrets).
type generatorSet struct {
	all     map[string]generators.Generator
	client  client.Client
	repos   *localRepos
	secrets map[string]string // cluster server -> root-relative file declaring it
}

var quietLogger = func() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}()

var silenceControllerLogs sync.Once

func (r *Repo) generators() *generatorSet {
	if r.gen != nil {
		return r.gen
	}
	// The controller's generators log every result at info level through
	// logrus' standard logger; validation reports through findings instead.
	silenceControllerLogs.Do(func() { logrus.SetOutput(io.Discard) })
	store := &objectStore{projects: r.Projects, secrets: r.clusterSecrets()}
	g := &generatorSet{client: store, repos: &localRepos{r: r}, secrets: map[string]string{}}
	for _, s := range r.ClusterSecrets {
		g.secrets[string(secretField(s, "server"))] = s.Pos.File
	}
	ctx := context.Background()
	terminal := map[string]generators.Generator{
		"List":     generators.NewListGenerator(),
		"Clusters": generators.NewClusterGenerator(ctx, store, &secretsClientset{store: store}, ControllerNamespace),
		"Git":      generators.NewGitGenerator(g.repos, ControllerNamespace),
	}
	nested := map[string]generators.Generator{
		"List": terminal["List"], "Clusters": terminal["Clusters"], "Git": terminal["Git"],
		"Matrix": generators.NewMatrixGenerator(terminal), "Merge": generators.NewMergeGenerator(terminal),
	}
	g.all = map[string]generators.Generator{
		"List": terminal["List"], "Clusters": terminal["Clusters"], "Git": terminal["Git"],
		"Matrix": generators.NewMatrixGenerator(nested), "Merge": generators.NewMergeGenerator(nested),
	}
	r.gen = g
	return g
}

// origins are the files a parameter set's values came from: the git files
// generator's file, the cluster Secret.
func (g *generatorSet) origins(p map[string]any) []string {
	flat := map[string]string{}
	flattenInto(flat, "", p)
	var out []string
	if f := flat["path.filename"]; f != "" {
		dir := flat["path"]
		if dir == "" {
			dir = flat["path.path"]
		}
		out = append(out, filepath.ToSlash(filepath.Join(dir, f)))
	}
	if f, ok := g.secrets[flat["server"]]; ok {
		out = append(out, f)
	}
	return out
}

func secretField(o *Object, key string) []byte {
	if s, ok := o.Object["stringData"].(map[string]any); ok {
		if v, ok := s[key].(string); ok {
			return []byte(v)
		}
	}
	if s, ok := o.Object["data"].(map[string]any); ok {
		if v, ok := s[key].(string); ok {
			if b, err := decodeBase64(v); err == nil {
				return b
			}
		}
	}
	return nil
}

// clusterSecrets turns the repository's cluster Secrets, and tug.yaml's
// clusters other than in-cluster, into the Secrets Argo CD would hold.
func (r *Repo) clusterSecrets() []corev1.Secret {
	var out []corev1.Secret
	seen := map[string]bool{}
	for _, o := range r.ClusterSecrets {
		var s corev1.Secret
		if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &s); err != nil {
			continue // validated elsewhere
		}
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
		if s.Namespace == "" {
			s.Namespace = ControllerNamespace
		}
		seen[strings.TrimRight(string(s.Data["server"]), "/")] = true
		out = append(out, s)
	}
	for _, c := range r.Config.Clusters {
		if c.Server == v1alpha1.KubernetesInternalAPIServerAddr || seen[strings.TrimRight(c.Server, "/")] {
			continue
		}
		out = append(out, corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-" + c.Name, Namespace: ControllerNamespace,
				Labels: map[string]string{"argocd.argoproj.io/secret-type": "cluster"}},
			Data: map[string][]byte{"name": []byte(c.Name), "server": []byte(c.Server)},
		})
	}
	return out
}

// objectStore answers the two reads the generators make of the Argo CD
// namespace: the template's AppProject (git generator) and the cluster
// Secrets (cluster generator). It holds what the repository declares; any
// other call is a programming error and says so.
type objectStore struct {
	client.Client
	projects []*AppProject
	secrets  []corev1.Secret
}

func (s *objectStore) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	p, ok := obj.(*v1alpha1.AppProject)
	if !ok {
		return fmt.Errorf("offline store: cannot get %T", obj)
	}
	for _, d := range s.projects {
		if d.Name == key.Name {
			d.AppProject.DeepCopyInto(p)
			return nil
		}
	}
	if key.Name == "default" {
		p.Name = "default"
		return nil
	}
	return fmt.Errorf("AppProject %q is not declared in the repository", key.Name)
}

func (s *objectStore) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	sl, ok := list.(*corev1.SecretList)
	if !ok {
		return fmt.Errorf("offline store: cannot list %T", list)
	}
	lo := &client.ListOptions{}
	lo.ApplyOptions(opts)
	for _, sec := range s.secrets {
		if lo.LabelSelector == nil || lo.LabelSelector.Matches(labels.Set(sec.Labels)) {
			sl.Items = append(sl.Items, *sec.DeepCopy())
		}
	}
	return nil
}

// secretsClientset is the part of kubernetes.Interface the cluster
// generator's ListClusters uses, over the same store.
type secretsClientset struct {
	kubernetes.Interface
	store *objectStore
}

func (c *secretsClientset) CoreV1() typedcorev1.CoreV1Interface {
	return &secretsCoreV1{store: c.store}
}

type secretsCoreV1 struct {
	typedcorev1.CoreV1Interface
	store *objectStore
}

func (c *secretsCoreV1) Secrets(string) typedcorev1.SecretInterface {
	return &secretsList{store: c.store}
}

type secretsList struct {
	typedcorev1.SecretInterface
	store *objectStore
}

func (c *secretsList) List(ctx context.Context, opts metav1.ListOptions) (*corev1.SecretList, error) {
	sel, err := labels.Parse(opts.LabelSelector)
	if err != nil {
		return nil, err
	}
	out := &corev1.SecretList{}
	return out, c.store.List(ctx, out, client.MatchingLabelsSelector{Selector: sel})
}

// errRemoteRepo is returned for a git generator reading another repository.
type errRemoteRepo struct{ url string }

func (e errRemoteRepo) Error() string { return e.url + " is not this repository" }

// localRepos is the ApplicationSet controller's repository service over the
// working tree: GetDirectories lists directories as the repo-server does
// (hidden ones skipped), GetFiles matches files as `git ls-files -- PATTERN`
// does (Argo CD's default globbing).
type localRepos struct {
	r    *Repo
	once sync.Once
	dirs []string
	list []string
	err  error
}

func (l *localRepos) scan() {
	l.once.Do(func() {
		l.err = filepath.WalkDir(l.r.Root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(l.r.Root, p)
			rel = filepath.ToSlash(rel)
			if d.IsDir() {
				if d.Name() == ".git" {
					return filepath.SkipDir
				}
				if rel != "." && !strings.HasPrefix(d.Name(), ".") {
					l.dirs = append(l.dirs, rel)
				} else if rel != "." {
					// hidden directories: listed files below still count for
					// ls-files, but the repo-server skips them as directories
					l.walkHiddenFiles(p)
					return filepath.SkipDir
				}
				return nil
			}
			l.list = append(l.list, rel)
			return nil
		})
		sort.Strings(l.dirs)
		sort.Strings(l.list)
	})
}

func (l *localRepos) walkHiddenFiles(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(l.r.Root, p)
			l.list = append(l.list, filepath.ToSlash(rel))
		}
		return nil
	})
}

func (l *localRepos) local(repoURL string) error {
	if l.r.URL != "" && SameRepo(repoURL, l.r.URL) {
		return nil
	}
	if l.r.URL == "" {
		return nil // no URL known: generators read this repository, as sources do
	}
	return errRemoteRepo{url: repoURL}
}

func (l *localRepos) GetDirectories(_ context.Context, repoURL, _, _ string, _, _ bool) ([]string, error) {
	if err := l.local(repoURL); err != nil {
		return nil, err
	}
	l.scan()
	return l.dirs, l.err
}

func (l *localRepos) GetFiles(_ context.Context, repoURL, _, _, pattern string, _, _ bool) (map[string][]byte, error) {
	if err := l.local(repoURL); err != nil {
		return nil, err
	}
	l.scan()
	if l.err != nil {
		return nil, l.err
	}
	match, err := pathspecMatcher(pattern)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, f := range l.list {
		if !match(f) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(l.r.Root, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		out[f] = data
	}
	return out, nil
}

// pathspecMatcher matches like a git pathspec without magic: the pattern
// names a file or a leading directory literally, or is a glob in which
// wildcards also match "/" (fnmatch without FNM_PATHNAME).
func pathspecMatcher(pattern string) (func(string) bool, error) {
	pattern = strings.TrimPrefix(pattern, "./")
	if pattern == "" || pattern == "." {
		return func(string) bool { return true }, nil
	}
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		case '[':
			j := strings.IndexByte(pattern[i+1:], ']')
			if j < 0 {
				re.WriteString(`\[`)
				continue
			}
			class := pattern[i+1 : i+1+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			re.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j + 1
		case '\\':
			if i+1 < len(pattern) {
				i++
				re.WriteString(regexp.QuoteMeta(string(pattern[i])))
			}
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("$")
	glob, err := regexp.Compile(re.String())
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	prefix := strings.TrimSuffix(pattern, "/")
	return func(f string) bool {
		return f == prefix || strings.HasPrefix(f, prefix+"/") || glob.MatchString(f)
	}, nil
}

type apiextJSON = apiextensionsv1.JSON

func decodeBase64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
