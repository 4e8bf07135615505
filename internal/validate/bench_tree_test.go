package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func writeFiles(b *testing.B, root string, files map[string]string) {
	b.Helper()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGitDirectories1000: one ApplicationSet whose git directories
// generator matches 1,000 service directories (each a plain manifest
// directory), expanded with the ApplicationSet controller's code, rendered
// and checked. Run with
//
//	go test -run '^$' -bench GitDirectories1000 -benchtime 1x ./internal/validate/
func BenchmarkGitDirectories1000(b *testing.B) {
	const n = 1000
	root := b.TempDir()
	files := map[string]string{
		"tug.yaml": "repoURL: https://github.com/acme/fleet.git\n",
		"appsets/services.yaml": `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: services
  namespace: argocd
spec:
  goTemplate: true
  generators:
    - git:
        repoURL: https://github.com/acme/fleet.git
        revision: HEAD
        directories:
          - path: services/*
  template:
    metadata:
      name: '{{.path.basename}}'
    spec:
      project: default
      source:
        repoURL: https://github.com/acme/fleet.git
        targetRevision: HEAD
        path: '{{.path.path}}'
      destination:
        server: https://kubernetes.default.svc
        namespace: '{{.path.basename}}'
`,
	}
	for i := range n {
		files[fmt.Sprintf("services/svc-%04d/deployment.yaml", i)] = deploymentYAML(fmt.Sprintf("svc-%04d", i))
	}
	writeFiles(b, root, files)
	benchTree(b, root, n)
}

// BenchmarkHelmAppOfApps500: a root Application renders a Helm chart whose
// template ranges over 500 services into 500 child Applications, each a
// release of one shared service chart; all are rendered and checked. Run with
//
//	go test -run '^$' -bench HelmAppOfApps500 -benchtime 1x ./internal/validate/
func BenchmarkHelmAppOfApps500(b *testing.B) {
	const n = 500
	root := b.TempDir()
	var values strings.Builder
	values.WriteString("services:\n")
	for i := range n {
		fmt.Fprintf(&values, "  - name: svc-%03d\n    replicas: %d\n", i, 1+i%3)
	}
	writeFiles(b, root, map[string]string{
		"tug.yaml": "repoURL: https://github.com/acme/fleet.git\n",
		"root.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: root
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/acme/fleet.git
    path: charts/apps
  destination:
    server: https://kubernetes.default.svc
    namespace: argocd
`,
		"charts/apps/Chart.yaml":  "apiVersion: v2\nname: apps\nversion: 0.1.0\n",
		"charts/apps/values.yaml": values.String(),
		"charts/apps/templates/apps.yaml": `{{- range .Values.services }}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {{ .name }}
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/acme/fleet.git
    path: charts/service
    helm:
      parameters:
        - name: replicas
          value: "{{ .replicas }}"
  destination:
    server: https://kubernetes.default.svc
    namespace: {{ .name }}
{{- end }}
`,
		"charts/service/Chart.yaml":  "apiVersion: v2\nname: service\nversion: 0.1.0\n",
		"charts/service/values.yaml": "replicas: 1\n",
		"charts/service/templates/deployment.yaml": strings.Replace(deploymentYAML("{{ .Release.Name }}"),
			"replicas: 1", "replicas: {{ .Values.replicas }}", 1),
	})
	benchTree(b, root, n+1)
}

func deploymentYAML(name string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/web:1.0.0
`
}

func benchTree(b *testing.B, root string, wantApps int) {
	for b.Loop() {
		start, cpuStart := time.Now(), cpuTime()
		res := runRepo(b, root)
		took, cpu := time.Since(start), cpuTime()-cpuStart
		if res.Apps != wantApps || res.Count(Warning) != 0 {
			b.Fatalf("%d applications checked (want %d); findings %v", res.Apps, wantApps, res.Findings[:min(3, len(res.Findings))])
		}
		b.ReportMetric(took.Seconds(), "s/validate")
		b.ReportMetric(cpu.Seconds(), "cpu-s/validate")
		fmt.Fprintf(os.Stderr, "\n%d Applications loaded, expanded, rendered and checked in %v (%v of CPU time on %d CPUs; load average %s)\n",
			res.Apps, took.Round(time.Millisecond), cpu.Round(time.Millisecond), runtime.GOMAXPROCS(0), loadAverage())
	}
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(data))[:1], "")
}
