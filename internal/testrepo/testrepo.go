// Package testrepo writes generated GitOps repositories for benchmarks and
// tests: many Applications over a few shared Helm charts, the shape the
// speed figures of tug validate and tug diff are given for.
package testrepo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RepoURL is the repository URL the generated tug.yaml and Applications use.
const RepoURL = "https://example.com/bench.git"

// Charts are the generated charts; service i uses Charts[i%len(Charts)].
var Charts = []string{"web", "api", "worker"}

// Environments are each service's environments, one Application each.
var Environments = []string{"dev", "prod"}

// HelmApp is one generated Application: a release of Chart (a
// repository-relative folder) with one value file (relative to the chart).
type HelmApp struct {
	Name, Release, Chart, ValueFile, Namespace string
}

// HelmFleet writes services × Environments Helm Applications under root,
// two per file apps/svc-NNNN.yaml, sharing the charts in charts/ (each with
// values.yaml and a values-ENV.yaml per environment), in project "bench";
// every Application passes tug validate without a warning. It returns the
// Applications in file order.
func HelmFleet(root string, services int) ([]HelmApp, error) {
	files := map[string]string{
		"tug.yaml": "repoURL: " + RepoURL + "\n",
		"apps/project.yaml": `apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: bench, namespace: argocd}
spec:
  sourceRepos: [` + RepoURL + `]
  destinations: [{server: https://kubernetes.default.svc, namespace: 'svc-*'}]
`,
	}
	for _, c := range Charts {
		files["charts/"+c+"/Chart.yaml"] = "apiVersion: v2\nname: " + c + "\nversion: 0.1.0\n"
		files["charts/"+c+"/values.yaml"] = "image: {repository: ghcr.io/example/" + c + ", tag: 0.1.0}\nreplicas: 1\nport: 8080\n"
		files["charts/"+c+"/values-dev.yaml"] = "image: {tag: 0.2.0}\n"
		files["charts/"+c+"/values-prod.yaml"] = "replicas: 3\n"
		files["charts/"+c+"/templates/all.yaml"] = serviceTemplate
	}
	var apps []HelmApp
	for i := range services {
		name := fmt.Sprintf("svc-%04d", i)
		chart := "charts/" + Charts[i%len(Charts)]
		var docs []string
		for _, env := range Environments {
			a := HelmApp{Name: name + "-" + env, Release: name, Chart: chart, ValueFile: "values-" + env + ".yaml", Namespace: name + "-" + env}
			apps = append(apps, a)
			docs = append(docs, fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: %s, namespace: argocd}
spec:
  project: bench
  source:
    repoURL: %s
    path: %s
    helm: {releaseName: %s, valueFiles: [%s]}
  destination: {server: https://kubernetes.default.svc, namespace: %s}
  syncPolicy: {automated: {prune: true, selfHeal: true}, retry: {limit: 3, refresh: true}}
`, a.Name, RepoURL, a.Chart, a.Release, a.ValueFile, a.Namespace))
		}
		files["apps/"+name+".yaml"] = strings.Join(docs, "---\n")
	}
	return apps, WriteFiles(root, files)
}

// WriteFiles writes repository-relative slash paths under root.
func WriteFiles(root string, files map[string]string) error {
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// serviceTemplate is each chart's one template: a ServiceAccount,
// ConfigMap, Service and Deployment per release.
const serviceTemplate = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  LOG_LEVEL: info
  RELEASE: {{ .Release.Name | quote }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
  labels: {app: {{ .Release.Name }}}
spec:
  selector: {app: {{ .Release.Name }}}
  ports:
    - name: http
      port: 80
      targetPort: {{ .Values.port }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels: {app: {{ .Release.Name }}}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      serviceAccountName: {{ .Release.Name }}
      containers:
        - name: app
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          ports: [{name: http, containerPort: {{ .Values.port }}}]
          envFrom: [{configMapRef: {name: {{ .Release.Name }}}}]
          resources:
            requests: {cpu: 50m, memory: 64Mi}
            limits: {memory: 128Mi}
          readinessProbe:
            httpGet: {path: /healthz, port: http}
`
