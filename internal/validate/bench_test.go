package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tug-gitops/tug/internal/repo"
	"github.com/tug-gitops/tug/internal/testrepo"
)

// BenchmarkValidateVsHelmKubeconform generates 1,000 services × 2 environments
// (2,000 Helm Applications sharing 3 charts) and, in the same run, times
//   - tug: repo.Load + validate.Run (every check, Helm SDK rendering, schema), and
//   - the pipeline users script: `helm template … | kubeconform -strict` per
//     Application, both built from their Go modules (bench/tools/go.mod), with
//     kubeconform reading standalone-strict JSON schemas generated offline from
//     the Kubernetes v1.34 OpenAPI spec in the k8s.io/kubernetes module.
//
// Both sides run GOMAXPROCS Applications at a time. Run with
//
//	go test -run '^$' -bench ValidateVsHelm -benchtime 1x ./internal/validate/
//
// BENCH_APPS overrides the number of services (default 1000).
func BenchmarkValidateVsHelmKubeconform(b *testing.B) {
	services := 1000
	if s := os.Getenv("BENCH_APPS"); s != "" {
		fmt.Sscanf(s, "%d", &services)
	}
	tmp := b.TempDir()
	tools := buildTools(b, tmp)
	schemas := filepath.Join(tmp, "schemas")
	if err := writeKubeconformSchemas(schemas, []string{
		"io.k8s.api.core.v1.ConfigMap", "io.k8s.api.core.v1.Service", "io.k8s.api.core.v1.ServiceAccount", "io.k8s.api.apps.v1.Deployment",
	}); err != nil {
		b.Skipf("cannot generate kubeconform schemas offline: %v", err)
	}
	root := filepath.Join(tmp, "repo")
	apps := generateBenchRepo(b, root, services)

	for b.Loop() {
		start := time.Now()
		r, err := repo.Load(root)
		if err != nil {
			b.Fatal(err)
		}
		res, err := Run(context.Background(), r, Options{})
		if err != nil {
			b.Fatal(err)
		}
		tugTime := time.Since(start)
		if res.Apps != len(apps) || res.Count(Warning) != 0 {
			b.Fatalf("tug: %d apps, findings %v", res.Apps, res.Findings[:min(3, len(res.Findings))])
		}

		start = time.Now()
		if err := runPipeline(tools, schemas, root, apps); err != nil {
			b.Fatal(err)
		}
		pipeTime := time.Since(start)

		b.ReportMetric(tugTime.Seconds(), "tug-s")
		b.ReportMetric(pipeTime.Seconds(), "helm+kubeconform-s")
		b.ReportMetric(pipeTime.Seconds()/tugTime.Seconds(), "ratio")
		fmt.Fprintf(os.Stderr, "\n%d Helm Applications, %d at a time on %d CPUs:\n  tug validate:                 %v\n  helm template | kubeconform: %v\n  ratio: tug is %.1fx faster\n",
			len(apps), runtime.GOMAXPROCS(0), runtime.NumCPU(), tugTime.Round(time.Millisecond), pipeTime.Round(time.Millisecond), pipeTime.Seconds()/tugTime.Seconds())
	}
}

type benchApp struct{ release, chart, values, namespace string }

func buildTools(b *testing.B, tmp string) map[string]string {
	b.Helper()
	out := filepath.Join(tmp, "bin")
	cmd := exec.Command("go", "build", "-o", out+"/", "github.com/yannh/kubeconform/cmd/kubeconform", "helm.sh/helm/v3/cmd/helm")
	cmd.Dir = filepath.Join("..", "..", "bench", "tools")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Skipf("cannot build helm and kubeconform from bench/tools: %v\n%s", err, msg)
	}
	return map[string]string{"helm": filepath.Join(out, "helm"), "kubeconform": filepath.Join(out, "kubeconform")}
}

// runPipeline is what a CI script does per Application:
// helm template RELEASE CHART -f VALUES -n NS | kubeconform -strict -summary
func runPipeline(tools map[string]string, schemas, root string, apps []benchApp) error {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	loc := schemas + "/{{ .ResourceKind }}{{ .KindSuffix }}.json"
	for _, a := range apps {
		g.Go(func() error {
			helm := exec.Command(tools["helm"], "template", a.release, filepath.Join(root, a.chart),
				"-f", filepath.Join(root, a.chart, a.values), "--namespace", a.namespace, "--include-crds")
			var manifests, stderr bytes.Buffer
			helm.Stdout, helm.Stderr = &manifests, &stderr
			if err := helm.Run(); err != nil {
				return fmt.Errorf("helm template %s: %v: %s", a.release, err, stderr.String())
			}
			kc := exec.Command(tools["kubeconform"], "-strict", "-schema-location", loc, "-")
			kc.Stdin = &manifests
			if out, err := kc.CombinedOutput(); err != nil {
				return fmt.Errorf("kubeconform %s: %v: %s", a.release, err, out)
			}
			return nil
		})
	}
	return g.Wait()
}

// generateBenchRepo writes testrepo's Helm fleet: 2×services Applications.
func generateBenchRepo(b *testing.B, root string, services int) []benchApp {
	b.Helper()
	fleet, err := testrepo.HelmFleet(root, services)
	if err != nil {
		b.Fatal(err)
	}
	apps := make([]benchApp, len(fleet))
	for i, a := range fleet {
		apps[i] = benchApp{release: a.Release, chart: a.Chart, values: a.ValueFile, namespace: a.Namespace}
	}
	return apps
}

// writeKubeconformSchemas writes kubeconform "standalone-strict" JSON schemas
// (refs inlined, additionalProperties false) for the named definitions, from
// the Kubernetes OpenAPI v2 spec shipped in the k8s.io/kubernetes module that
// go.mod already requires — offline, like tug's own embedded schema.
func writeKubeconformSchemas(dir string, names []string) error {
	modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes").Output()
	if err != nil {
		return fmt.Errorf("locate k8s.io/kubernetes module: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(modDir)), "api", "openapi-spec", "swagger.json"))
	if err != nil {
		return err
	}
	var spec struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range names {
		def, ok := spec.Definitions[name]
		if !ok {
			return fmt.Errorf("definition %s not in swagger.json", name)
		}
		gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
		if len(gvks) == 0 {
			return fmt.Errorf("%s has no group-version-kind", name)
		}
		gvk := gvks[0].(map[string]any)
		group, version, kind := gvk["group"].(string), gvk["version"].(string), gvk["kind"].(string)
		suffix := "-" + strings.ToLower(version)
		if group != "" {
			suffix = "-" + strings.ToLower(strings.Split(group, ".")[0]) + suffix
		}
		out, err := json.Marshal(inlineSchema(def, spec.Definitions, 0))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, strings.ToLower(kind)+suffix+".json"), out, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// inlineSchema resolves $refs and makes objects strict, as openapi2jsonschema
// --strict --standalone (what kubeconform's published schemas use) does.
func inlineSchema(v any, defs map[string]map[string]any, depth int) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = inlineSchema(e, defs, depth)
		}
		return out
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok && depth < 40 {
			target := defs[strings.TrimPrefix(ref, "#/definitions/")]
			if target == nil {
				return map[string]any{}
			}
			return inlineSchema(target, defs, depth+1)
		}
		if x["format"] == "int-or-string" {
			return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		}
		out := map[string]any{}
		for k, e := range x {
			if strings.HasPrefix(k, "x-kubernetes-") || k == "description" {
				continue
			}
			out[k] = inlineSchema(e, defs, depth)
		}
		if _, has := out["properties"]; has {
			out["additionalProperties"] = false
		}
		return out
	}
	return v
}
