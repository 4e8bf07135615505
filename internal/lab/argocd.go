package lab

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/tug-gitops/tug/internal/bootstrap"
	"github.com/tug-gitops/tug/internal/fsutil"
	"github.com/tug-gitops/tug/internal/kube"
	"github.com/tug-gitops/tug/internal/tools"
)

// ArgoCDNamespace is where Argo CD and its Applications live.
const ArgoCDNamespace = "argocd"

// argoComponents are the upstream workloads the lab can run as processes,
// in start order; it runs those infra/argocd does not scale to zero (see
// argoEarly.runs). Redis is the lab's own, and Dex and the notifications
// controller are never run: the lab uses local accounts.
var argoComponents = []string{"argocd-repo-server", "argocd-server", "argocd-application-controller", "argocd-applicationset-controller"}

// podSpecOf returns the pod template of a Deployment or StatefulSet.
func podSpecOf(obj *unstructured.Unstructured) (*corev1.PodSpec, error) {
	switch obj.GetKind() {
	case "Deployment":
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d); err != nil {
			return nil, err
		}
		return &d.Spec.Template.Spec, nil
	case "StatefulSet":
		var s appsv1.StatefulSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &s); err != nil {
			return nil, err
		}
		return &s.Spec.Template.Spec, nil
	}
	return nil, fmt.Errorf("%s/%s is not a Deployment or StatefulSet", obj.GetKind(), obj.GetName())
}

// workloadEnv resolves a container's environment the way the kubelet would:
// literal values, ConfigMap keys (optional keys left unset when missing),
// Secret keys and the pod's namespace. This is how argocd-cmd-params-cm
// reaches the processes, exactly as it reaches the upstream pods.
func workloadEnv(c corev1.Container, configMaps map[string]map[string]string, secret func(name, key string) (string, bool)) ([]string, error) {
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := configMaps[ref.Name][ref.Key]
			if !ok {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				return nil, fmt.Errorf("env %s: configmap %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env = append(env, e.Name+"="+v)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secret(ref.Name, ref.Key)
			if !ok {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				return nil, fmt.Errorf("env %s: secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env = append(env, e.Name+"="+v)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env = append(env, e.Name+"="+ArgoCDNamespace)
		}
	}
	return env, nil
}

// argoProcess turns one upstream workload into a lab component.
func (l *Lab) argoProcess(ctx context.Context, name string, early *argoEarly) (component, error) {
	objs, redis := early.objs, early.redis
	argocdBin, helmBin := l.bins[tools.ArgoCD], l.bins[tools.Helm]
	var wl *unstructured.Unstructured
	configMaps := map[string]map[string]string{}
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" {
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			configMaps[o.GetName()] = data
		}
		if bootstrap.IsWorkload(o) && o.GetName() == name {
			wl = o
		}
	}
	if wl == nil {
		return component{}, fmt.Errorf("infra/argocd renders no workload %s: the lab runs the upstream components it finds there", name)
	}
	spec, err := podSpecOf(wl)
	if err != nil {
		return component{}, err
	}
	ctr := spec.Containers[0]
	// The only Secret key upstream's workloads read is the Redis password,
	// which the lab keeps itself (it exists before the cluster does).
	secret := func(sname, key string) (string, bool) {
		if sname == "argocd-redis" && key == "auth" {
			pw, err := l.redisPassword()
			return pw, err == nil
		}
		return "", false
	}
	env, err := workloadEnv(ctr, configMaps, secret)
	if err != nil {
		return component{}, fmt.Errorf("%s: %w", name, err)
	}
	// As in the pod: a ServiceAccount token only where upstream mounts one
	// (the repo-server has none and gets an empty kubeconfig, never yours).
	kubeconfig := l.layout.Kubeconfig("none")
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		if kubeconfig, err = l.serviceAccountKubeconfig(ctx, spec.ServiceAccountName, name); err != nil {
			return component{}, err
		}
	} else if err := fsutil.WriteFileAtomic(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		return component{}, err
	}
	home := l.layout.ArgoCDHome(name)
	for _, d := range []string{"tls", "ssh", "gpg/keys", "gpg/source", "tmp"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			return component{}, err
		}
	}
	env = append(append(l.baseEnv(), env...),
		"ARGOCD_BINARY_NAME="+name,
		// Out of a pod, "in-cluster" means the kubeconfig below: the
		// in-cluster destination https://kubernetes.default.svc then
		// reaches the lab's API server with this component's own
		// ServiceAccount, so the upstream RBAC applies unchanged.
		"ARGOCD_FAKE_IN_CLUSTER=true",
		"KUBECONFIG="+kubeconfig,
		"ARGOCD_TLS_DATA_PATH="+filepath.Join(home, "tls"),
		"ARGOCD_SSH_DATA_PATH="+filepath.Join(home, "ssh"),
		"ARGOCD_GNUPGHOME="+filepath.Join(home, "gpg/keys"),
		"ARGOCD_GPG_DATA_PATH="+filepath.Join(home, "gpg/source"),
		// GnuPG commit verification needs the gpg agent the image ships; the
		// lab has none, and the product's project does not require signatures.
		"ARGOCD_GPG_ENABLED=false",
		"TMPDIR="+filepath.Join(home, "tmp"),
		// Upstream's controller keeps kubectl's discovery and HTTP cache in
		// /tmp/kubecache, its pod's own /tmp; on a host that is everyone's.
		"KUBECACHEDIR="+filepath.Join(home, "kubecache"),
		"ARGOCD_ASK_PASS_SOCK="+l.layout.AskPassSocket(),
		"PATH="+filepath.Dir(helmBin)+string(os.PathListSeparator)+os.Getenv("PATH"),
	)
	args := append([]string(nil), ctr.Args[min(1, len(ctr.Args)):]...) // drop the binary path
	c := component{Name: name, Binary: argocdBin, Env: env, Dir: home, Ports: map[string]int{}}
	var portErr error
	port := func(key string) int {
		p, err := l.ports.get(name + "/" + key)
		if err != nil && portErr == nil {
			portErr = err
		}
		c.Ports[key] = p
		return p
	}
	repoServer := "127.0.0.1:" + strconv.Itoa(l.ports.lookup("argocd-repo-server/grpc"))
	switch name {
	case "argocd-repo-server":
		grpc, metrics := port("grpc"), port("metrics")
		args = append(args, "--address=127.0.0.1", "--port="+strconv.Itoa(grpc), "--metrics-address=127.0.0.1", "--metrics-port="+strconv.Itoa(metrics), "--redis="+redis)
		c.Ready = httpOK("http://127.0.0.1:" + strconv.Itoa(metrics) + "/healthz")
	case "argocd-server":
		https, metrics := port("https"), port("metrics")
		args = append(args, "--address=127.0.0.1", "--port="+strconv.Itoa(https), "--metrics-address=127.0.0.1", "--metrics-port="+strconv.Itoa(metrics), "--redis="+redis, "--repo-server="+repoServer)
		c.Ready = httpsHealthy(https)
	case "argocd-application-controller":
		// The v3.2 controller binds its metrics listener to all
		// interfaces (controller/metrics: hard-coded ":port"); it is the
		// lab's one listener not on loopback, see docs/lab.md.
		metrics := port("metrics")
		args = append(args, "--metrics-port="+strconv.Itoa(metrics), "--redis="+redis, "--repo-server="+repoServer)
		c.Ready = httpOK("http://127.0.0.1:" + strconv.Itoa(metrics) + "/healthz")
	case "argocd-applicationset-controller":
		metrics, probe, webhook := port("metrics"), port("probe"), port("webhook")
		args = append(args, "--metrics-addr=127.0.0.1:"+strconv.Itoa(metrics), "--probe-addr=127.0.0.1:"+strconv.Itoa(probe), "--webhook-addr=127.0.0.1:"+strconv.Itoa(webhook), "--argocd-repo-server="+repoServer)
		// v3.2 registers no health checks on the probe server (upstream
		// defines no probes for this Deployment): metrics answering means
		// the manager is up.
		c.Ready = httpOK("http://127.0.0.1:" + strconv.Itoa(metrics) + "/metrics")
	}
	if portErr != nil {
		return component{}, fmt.Errorf("%s: %w", name, portErr)
	}
	c.Args = args
	return c, nil
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the
// component's ServiceAccount, with a token from the TokenRequest API.
func (l *Lab) serviceAccountKubeconfig(ctx context.Context, sa, component string) (string, error) {
	if sa == "" {
		sa = "default"
	}
	cs, err := l.clientset()
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(ArgoCDNamespace).CreateToken(ctx, sa, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](int64((30 * 24 * time.Hour).Seconds()))},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for serviceaccount %s/%s: %w", ArgoCDNamespace, sa, err)
	}
	path := l.layout.Kubeconfig(component)
	return path, writeKubeconfig(path, l.apiServer, l.pki.caPath(), "", "", tr.Status.Token, ArgoCDNamespace, "lab")
}

func httpOK(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := insecureClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

// argoEarly holds what startArgoEarly prepared for startArgoCD.
type argoEarly struct {
	objs  []*unstructured.Unstructured
	redis string // host:port
}

// runs says whether the install runs workload name: a cluster runs none of
// a Deployment or StatefulSet whose replicas are 0, and neither does the lab.
func (e *argoEarly) runs(name string) bool {
	for _, o := range e.objs {
		if bootstrap.IsWorkload(o) && o.GetName() == name {
			replicas, set, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
			return !set || replicas > 0
		}
	}
	return true // argoProcess says that it is missing
}

// startArgoEarly starts what needs no cluster — Redis and the repo-server,
// whose upstream pod mounts no ServiceAccount token — while the API server
// is still coming up.
func (l *Lab) startArgoEarly(ctx context.Context, bins map[tools.Tool]string) (*argoEarly, error) {
	objs, err := defaultRenderCache().argoCD(l.opts.RepoRoot)
	if err != nil {
		return nil, err
	}
	password, err := l.redisPassword()
	if err != nil {
		return nil, err
	}
	// Argo CD's components are given Redis's address when they start, so a
	// port taken in the meantime can be swapped for another.
	var kind string
	port, err := l.ports.listen("redis", func(port int) (err error) {
		kind, err = l.startRedis(ctx, port, password)
		return err
	})
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.status.Redis = kind
	l.mu.Unlock()
	early := &argoEarly{objs: objs, redis: "127.0.0.1:" + strconv.Itoa(port)}
	c, err := l.argoProcess(ctx, "argocd-repo-server", early)
	if err != nil {
		return nil, err
	}
	return early, l.run(ctx, c)
}

// startArgoCD bootstraps Argo CD's configuration on the lab's API server —
// the same infra/argocd a real cluster gets, less the workloads — and runs
// the remaining workloads as processes. It returns once the application
// controller is ready; the components the apps do not wait on are waited
// for by waitAPIComponents, and applyRoot gives it the root Application.
//
// On a lab that was bootstrapped before (state reused), the components
// start at once and bootstrap re-applies the configuration beside them:
// everything they need is already on the API server.
func (l *Lab) startArgoCD(ctx context.Context, early *argoEarly) error {
	marker := l.layout.BootstrapMarker()
	resumed := fileExists(marker)
	bootDone := make(chan error, 1)
	go func() { bootDone <- l.bootstrapArgoCD(ctx, early, resumed) }()
	if !resumed {
		if err := <-bootDone; err != nil {
			return err
		}
		// The processes act as ServiceAccounts, and on a new cluster the
		// default roles (discovery) may still be on their way.
		if err := l.rolesReady(); err != nil {
			return err
		}
	} else if err := l.openCRDStorage(ctx, early.objs); err != nil {
		return err
	}
	began := time.Now()
	for _, name := range argoComponents[1:] {
		if !early.runs(name) {
			l.opts.Log.Info("not run: infra/argocd scales it to zero", "component", name)
			continue
		}
		c, err := l.argoProcess(ctx, name, early)
		if err != nil {
			return err
		}
		if err := l.startComponent(c); err != nil {
			return err
		}
	}
	if err := l.ports.save(l.layout.Ports()); err != nil {
		return err
	}
	if err := l.waitReady(ctx, "argocd-application-controller", 90*time.Second); err != nil {
		return err
	}
	l.opts.Log.Info("ready", "component", "argocd-application-controller", "after", time.Since(began).Round(time.Millisecond))
	if resumed {
		return <-bootDone
	}
	return nil
}

// applyRoot applies the root Application, pointed at the forge, once the
// application controller runs, and records the lab's endpoints.
func (l *Lab) applyRoot(ctx context.Context) error {
	cfg, err := l.restConfig()
	if err != nil {
		return err
	}
	if _, err := bootstrap.ApplyRoot(ctx, cfg, l.opts.RepoRoot, l.forgeRepoURL()); err != nil {
		return fmt.Errorf("apply the root Application: %w", err)
	}
	if err := fsutil.WriteFileAtomic(l.layout.BootstrapMarker(), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return err
	}
	l.mu.Lock()
	l.status.Endpoints["argocd"] = "https://127.0.0.1:" + strconv.Itoa(l.ports.lookup("argocd-server/https"))
	if l.argoUI {
		l.status.Endpoints["argocd-ui"] = l.status.Endpoints["argocd"] + "/"
	}
	l.status.Endpoints["kubernetes"] = l.apiServer
	l.status.Endpoints["forge"] = l.forge.URL()
	l.status.Endpoints["repository"] = l.forgeRepoURL()
	l.status.Endpoints["registry"] = l.forge.Registry()
	l.mu.Unlock()
	return nil
}

// openCRDStorage makes a restarted API server set up the storage of Argo
// CD's custom resources before the controllers list them (bootstrap does it
// on a new cluster; see kube.Client.OpenCRDStorage).
func (l *Lab) openCRDStorage(ctx context.Context, install []*unstructured.Unstructured) error {
	cfg, err := l.restConfig()
	if err != nil {
		return err
	}
	c, err := kube.NewClient(cfg)
	if err != nil {
		return err
	}
	crds, _ := kube.SplitCRDs(install)
	c.OpenCRDStorage(ctx, crds)
	return nil
}

// waitAPIComponents waits for argocd-server and, when the install runs it,
// the ApplicationSet controller: the product's apps need neither to become
// Healthy.
func (l *Lab) waitAPIComponents(ctx context.Context, early *argoEarly) error {
	for _, name := range []string{"argocd-server", "argocd-applicationset-controller"} {
		if !early.runs(name) {
			continue
		}
		if err := l.waitReady(ctx, name, 90*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// bootstrapArgoCD runs tug bootstrap's code against the lab, excluding the
// workloads the lab runs itself, then adds the lab's own Secrets.
func (l *Lab) bootstrapArgoCD(ctx context.Context, early *argoEarly, resumed bool) error {
	cfg, err := l.restConfig()
	if err != nil {
		return err
	}
	began := time.Now()
	out := &stampedWriter{start: began}
	opts := bootstrap.Options{
		RESTConfig: cfg, RepoRoot: l.opts.RepoRoot, RepoURL: l.forgeRepoURL(), Lab: l.opts.Name,
		Exclude: bootstrap.IsWorkload, Out: out, Install: early.objs,
		DeferRootApplication: true, // applied once the controller runs
	}
	// On a restart, what was applied last time is usually what would be
	// applied now; re-applying it (three large CRDs among 53 objects) cost
	// 2 s of a 5 s restart, on the API server the controller is starting
	// against. `tug bootstrap` still re-applies unconditionally.
	digestPath := l.layout.BootstrapDigest()
	if resumed && appliedAlready(opts, digestPath) {
		l.opts.Log.Info("argo cd configuration unchanged since it was applied; not re-applied")
		return l.ensureLabSecrets(ctx)
	}
	rep, err := bootstrap.Run(ctx, opts)
	if err != nil {
		return fmt.Errorf("bootstrap Argo CD: %w\n%s", err, out.String())
	}
	l.opts.Log.Info("argo cd bootstrapped (install, credentials, root)", "took", time.Since(began).Round(time.Millisecond))
	l.opts.Log.Debug("bootstrap", "report", out.String())
	if err := l.ensureLabSecrets(ctx); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(digestPath, []byte(rep.Digest), 0o600)
}

// appliedAlready reports whether the digest bootstrap left in path after
// its last run matches what it would apply now.
func appliedAlready(opts bootstrap.Options, path string) bool {
	last, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	install, root, err := bootstrap.Objects(opts)
	if err != nil {
		return false // Run reports it
	}
	digest, err := bootstrap.Digest(install, root)
	return err == nil && digest == string(last)
}

// redisPassword returns the lab's Redis password, made once and kept in
// the state (0600); ensureLabSecrets stores it in Secret argocd-redis, where
// upstream's init Job would.
func (l *Lab) redisPassword() (string, error) {
	path := l.layout.RedisPassword()
	if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
		return string(data), nil
	}
	pw := randomToken(24)
	return pw, fsutil.WriteFileAtomic(path, []byte(pw), 0o600)
}

// ensureLabSecrets creates what upstream's init Job and cert-manager
// setups would: the Redis password (argocd-redis) and argocd-server's TLS
// certificate issued by the lab CA.
func (l *Lab) ensureLabSecrets(ctx context.Context) error {
	cs, err := l.clientset()
	if err != nil {
		return err
	}
	password, err := l.redisPassword()
	if err != nil {
		return err
	}
	crt, err := os.ReadFile(l.pki.certPath("argocd-server"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(l.pki.keyPath("argocd-server"))
	if err != nil {
		return err
	}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "argocd-redis", Namespace: ArgoCDNamespace}, Data: map[string][]byte{"auth": []byte(password)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "argocd-server-tls", Namespace: ArgoCDNamespace}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": crt, "tls.key": key}},
	} {
		if _, err := cs.CoreV1().Secrets(ArgoCDNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("secret %s/%s: %w", ArgoCDNamespace, s.Name, err)
		}
	}
	return nil
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := cryptorand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// stampedWriter keeps bootstrap's report with each line's offset from
// start, for the lab's debug log (where the time goes on a slow start).
type stampedWriter struct {
	start time.Time
	b     strings.Builder
}

func (w *stampedWriter) Write(p []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(p), "\n") {
		if line != "" {
			fmt.Fprintf(&w.b, "+%.2fs %s", time.Since(w.start).Seconds(), line)
		}
	}
	return len(p), nil
}

func (w *stampedWriter) String() string { return w.b.String() }
