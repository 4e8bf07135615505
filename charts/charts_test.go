package charts

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsyaml "sigs.k8s.io/yaml"
)

// services are the charts in this directory; each release is named after
// its chart (releaseName in infra/gitops/apps/<svc>.yaml).
var services = []string{"backend", "frontend"}

// nonrootUID is the distroless image's nonroot user.
const nonrootUID = 65532

// environments reads the environment list from tug.yaml, the repository's
// single declaration of them.
func environments(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../tug.yaml")
	if err != nil {
		t.Fatalf("read tug.yaml: %v", err)
	}
	var cfg struct {
		Environments []string `yaml:"environments"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("parse tug.yaml: %v", err)
	}
	if len(cfg.Environments) == 0 {
		t.Fatal("tug.yaml declares no environments")
	}
	return cfg.Environments
}

// envValues is what a values-<env>.yaml pins and the rendering must reflect.
type envValues struct {
	Environment  string `yaml:"environment"`
	ReplicaCount int32  `yaml:"replicaCount"`
	Image        struct {
		Tag any `yaml:"tag"`
	} `yaml:"image"`
}

func readEnvValues(t *testing.T, path string) envValues {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var v envValues
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return v
}

// rendered is one chart's output for one environment.
type rendered struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
}

// render loads chartDir and renders it like `helm template` (Install with
// DryRun+ClientOnly) with the given value files, then decodes the objects
// strictly, so a misspelt field in a template is an error here.
func render(chartDir, release, namespace string, valueFiles ...string) (rendered, error) {
	var out rendered
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return out, fmt.Errorf("load chart %s: %w", chartDir, err)
	}
	vals, err := (&values.Options{ValueFiles: valueFiles}).MergeValues(getter.Providers{})
	if err != nil {
		return out, fmt.Errorf("read values: %w", err)
	}
	install := action.NewInstall(&action.Configuration{})
	install.DryRun, install.ClientOnly, install.IncludeCRDs = true, true, true
	install.ReleaseName, install.Namespace = release, namespace
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return out, fmt.Errorf("render %s: %w", chartDir, err)
	}
	for name, doc := range releaseutil.SplitManifests(rel.Manifest) {
		var meta struct{ Kind string }
		if err := sigsyaml.Unmarshal([]byte(doc), &meta); err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		switch meta.Kind {
		case "Deployment":
			var d appsv1.Deployment
			if err := sigsyaml.UnmarshalStrict([]byte(doc), &d); err != nil {
				return out, fmt.Errorf("decode Deployment: %w", err)
			}
			out.deployments = append(out.deployments, d)
		case "Service":
			var s corev1.Service
			if err := sigsyaml.UnmarshalStrict([]byte(doc), &s); err != nil {
				return out, fmt.Errorf("decode Service: %w", err)
			}
			out.services = append(out.services, s)
		default:
			return out, fmt.Errorf("unexpected kind %q in %s", meta.Kind, name)
		}
	}
	return out, nil
}

func TestChartsLint(t *testing.T) {
	for _, svc := range services {
		for _, env := range environments(t) {
			t.Run(svc+"/"+env, func(t *testing.T) {
				vals, err := (&values.Options{ValueFiles: []string{filepath.Join(svc, "values-"+env+".yaml")}}).MergeValues(getter.Providers{})
				if err != nil {
					t.Fatal(err)
				}
				linter := lint.All(svc, vals, "shop-"+env, false)
				for _, msg := range linter.Messages {
					if msg.Severity >= support.WarningSev {
						t.Errorf("helm lint: %s", msg)
					}
				}
			})
		}
	}
}

func TestChartsRenderPerEnvironment(t *testing.T) {
	for _, svc := range services {
		for _, env := range environments(t) {
			t.Run(svc+"/"+env, func(t *testing.T) {
				valuesFile := filepath.Join(svc, "values-"+env+".yaml")
				want := readEnvValues(t, valuesFile)
				got, err := render(svc, svc, "shop-"+env, valuesFile)
				if err != nil {
					t.Fatal(err)
				}
				checkEnvFile(t, valuesFile, env, want)
				if len(got.deployments) != 1 || len(got.services) != 1 {
					t.Fatalf("rendered %d Deployments and %d Services, want 1 each", len(got.deployments), len(got.services))
				}
				checkDeployment(t, svc, env, want, got.deployments[0])
				checkService(t, svc, got.services[0], got.deployments[0])
			})
		}
	}
}

// checkEnvFile enforces what promotion relies on: image.tag is a string
// (quoted in YAML) and the environment name matches the file.
func checkEnvFile(t *testing.T, path, env string, v envValues) {
	t.Helper()
	if _, ok := v.Image.Tag.(string); !ok || v.Image.Tag == "" {
		t.Errorf("%s: image.tag = %#v, want a non-empty quoted string", path, v.Image.Tag)
	}
	if v.Environment != env {
		t.Errorf("%s: environment = %q, want %q", path, v.Environment, env)
	}
	if v.ReplicaCount < 1 {
		t.Errorf("%s: replicaCount = %d, want at least 1", path, v.ReplicaCount)
	}
	if env == "prod" && v.ReplicaCount < 2 {
		t.Errorf("%s: replicaCount = %d; prod needs at least 2 to survive a node loss", path, v.ReplicaCount)
	}
}

func checkDeployment(t *testing.T, svc, env string, want envValues, d appsv1.Deployment) {
	t.Helper()
	tag, _ := want.Image.Tag.(string)
	if d.Name != svc {
		t.Errorf("Deployment name = %q, want the release name %q", d.Name, svc)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != want.ReplicaCount {
		t.Errorf("replicas = %v, want %d", d.Spec.Replicas, want.ReplicaCount)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if wantImage := "ghcr.io/tug-gitops/" + svc + ":" + tag; c.Image != wantImage {
		t.Errorf("image = %q, want %q", c.Image, wantImage)
	}

	env2 := map[string]string{}
	for _, e := range c.Env {
		env2[e.Name] = e.Value
	}
	if env2["APP_VERSION"] != tag || env2["APP_ENV"] != env || env2["PORT"] != "8080" {
		t.Errorf("env = %v, want APP_VERSION=%s APP_ENV=%s PORT=8080", env2, tag, env)
	}
	if svc == "frontend" && env2["BACKEND_URL"] != "http://backend:8080" {
		t.Errorf("BACKEND_URL = %q, want http://backend:8080 (the backend release's Service)", env2["BACKEND_URL"])
	}

	checkRollout(t, d)
	checkSecurity(t, pod, c)
	checkProbes(t, c)
	for _, list := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := list[name]; !ok || q.IsZero() {
				t.Errorf("resources %v lack %s", c.Resources, name)
			}
		}
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http" && p.ContainerPort == 8080 }) {
		t.Errorf("container ports = %v, want http:8080", c.Ports)
	}
}

// checkRollout: a rollout never stops an old pod before a new one is
// Ready, and starts every replica's successor at once, so it takes one
// pod's start whatever the replica count.
func checkRollout(t *testing.T, d appsv1.Deployment) {
	t.Helper()
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxSurge == nil || ru.MaxUnavailable == nil {
		t.Fatalf("strategy = %+v, want RollingUpdate with maxSurge and maxUnavailable", d.Spec.Strategy)
	}
	replicas := int(*d.Spec.Replicas)
	if n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, replicas, false); err != nil || n != 0 {
		t.Errorf("maxUnavailable = %s (%d of %d replicas, %v), want 0: a rollout would stop pods before their successors serve", ru.MaxUnavailable.String(), n, replicas, err)
	}
	if n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, replicas, true); err != nil || n < replicas {
		t.Errorf("maxSurge = %s (%d of %d replicas, %v), want every replica's successor started at once", ru.MaxSurge.String(), n, replicas, err)
	}
}

func checkSecurity(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || !isTrue(psc.RunAsNonRoot) || psc.RunAsUser == nil || *psc.RunAsUser != nonrootUID ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot, runAsUser %d, seccomp RuntimeDefault", psc, nonrootUID)
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("container has no securityContext")
	}
	if !isTrue(sc.RunAsNonRoot) || sc.RunAsUser == nil || *sc.RunAsUser != nonrootUID {
		t.Errorf("container runs as root or an unexpected user: %+v", sc)
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Error("container root filesystem is writable")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container allows privilege escalation")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("capabilities = %+v, want drop [ALL] and add none", sc.Capabilities)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container seccompProfile = %+v, want RuntimeDefault", sc.SeccompProfile)
	}
}

func checkProbes(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe missing or not HTTP", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("%s probe = %s on %s, want %s on port http", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
}

func checkService(t *testing.T, svc string, s corev1.Service, d appsv1.Deployment) {
	t.Helper()
	if s.Name != svc {
		t.Errorf("Service name = %q, want the release name %q (the frontend calls http://backend:8080)", s.Name, svc)
	}
	if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8080 || s.Spec.Ports[0].TargetPort != intstr.FromString("http") {
		t.Errorf("Service ports = %+v, want 8080 -> http", s.Spec.Ports)
	}
	podLabels := d.Spec.Template.Labels
	if len(s.Spec.Selector) == 0 {
		t.Fatal("Service has no selector")
	}
	for k, v := range s.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%s does not match pod labels %v", k, v, podLabels)
		}
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("Deployment selector %s=%s does not match pod labels %v", k, v, podLabels)
		}
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

// TestEveryEnvironmentHasValuesFile guards against an environment added to
// tug.yaml without its values file, or a stray values file for none.
func TestEveryEnvironmentHasValuesFile(t *testing.T) {
	envs := environments(t)
	for _, svc := range services {
		files, err := filepath.Glob(filepath.Join(svc, "values-*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, f := range files {
			found = append(found, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "values-"), ".yaml"))
		}
		slices.Sort(found)
		want := slices.Sorted(slices.Values(envs))
		if !slices.Equal(found, want) {
			t.Errorf("%s has values files for %v, want exactly %v (tug.yaml environments)", svc, found, want)
		}
	}
}

func TestBrokenValuesFileIsAnError(t *testing.T) {
	_, err := render("backend", "backend", "shop-dev", filepath.Join("testdata", "broken-values.yaml"))
	if err == nil || !strings.Contains(err.Error(), "broken-values.yaml") {
		t.Fatalf("render with invalid YAML values = %v, want an error naming the file", err)
	}
}

func TestEmptyImageTagIsAnError(t *testing.T) {
	for _, svc := range services {
		_, err := render(svc, svc, "shop-dev", filepath.Join("testdata", "empty-tag-values.yaml"))
		if err == nil || !strings.Contains(err.Error(), "image.tag is required") {
			t.Errorf("%s with an empty image.tag: err = %v, want \"image.tag is required\"", svc, err)
		}
	}
}

func TestMissingChartIsAnError(t *testing.T) {
	if _, err := render(filepath.Join("testdata", "no-such-chart"), "x", "default"); err == nil {
		t.Fatal("render of a missing chart succeeded, want an error")
	}
}
