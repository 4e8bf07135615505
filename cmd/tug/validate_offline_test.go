package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHelperValidateChild is the child process of
// TestValidateOpensNoConnection: it runs tug with the arguments after "--".
func TestHelperValidateChild(t *testing.T) {
	if os.Getenv("TUG_VALIDATE_CHILD") != "1" {
		t.Skip("helper process, run by TestValidateOpensNoConnection")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(args))
}

// connRecorder is a loopback listener that counts every connection made to it.
type connRecorder struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []string
}

func newConnRecorder(t *testing.T) *connRecorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &connRecorder{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c.RemoteAddr().String())
			r.mu.Unlock()
			c.Close()
		}
	}()
	return r
}

func (r *connRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// TestValidateOpensNoConnection: `tug validate` on a repository full of
// things Argo CD downloads — a Helm-repository chart, an OCI chart, a
// remote value file, remote kustomize bases, a helmCharts chart, a chart
// dependency, a git generator reading another repository — opens no
// network connection. Every URL points at a recording listener, and so do
// all proxy variables (for names that would resolve elsewhere); the child
// must report each as source.remote (or the generator as not expanded)
// and the listener must have seen nothing.
func TestValidateOpensNoConnection(t *testing.T) {
	rec := newConnRecorder(t)
	addr := rec.ln.Addr().String()

	// The recorder records: one deliberate connection, seen within 10 s.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for deadline := time.Now().Add(10 * time.Second); rec.count() != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("the recorder saw %d connections after a dial, want 1", rec.count())
		}
		time.Sleep(10 * time.Millisecond)
	}

	dir := t.TempDir()
	url := "http://" + addr
	files := map[string]string{
		"apps/helm-repo.yaml": app("helm-repo", `
    repoURL: `+url+`/charts
    chart: web
    targetRevision: 1.2.3
    helm:
      valueFiles: [`+url+`/values/web.yaml]`),
		"apps/oci.yaml": app("oci", `
    repoURL: `+addr+`/charts
    chart: api
    targetRevision: 0.1.0`),
		"apps/kustomize.yaml": app("kustomize", `
    repoURL: https://github.com/acme/offline.git
    path: overlays/dev`),
		"apps/helmcharts.yaml": app("helmcharts", `
    repoURL: https://github.com/acme/offline.git
    path: helmcharts`),
		"apps/umbrella.yaml": app("umbrella", `
    repoURL: https://github.com/acme/offline.git
    path: charts/umbrella
    helm:
      valueFiles: [values.yaml, `+url+`/values/umbrella.yaml]`),
		"overlays/dev/kustomization.yaml": "resources:\n  - " + url + "/acme/base.git//deploy?ref=v1\n  - github.com/acme/base//deploy?ref=v1\n",
		"helmcharts/kustomization.yaml":   "helmCharts:\n  - name: redis\n    repo: " + url + "/charts\n    version: 1.0.0\n",
		"charts/umbrella/Chart.yaml":      "apiVersion: v2\nname: umbrella\nversion: 0.1.0\ndependencies:\n  - name: db\n    version: 1.0.0\n    repository: " + url + "/charts\n  - name: cache\n    version: ~0.4.0\n    repository: oci://" + addr + "/charts\n",
		"charts/umbrella/values.yaml":     "{}\n",
		"apps/appset.yaml": `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: elsewhere
  namespace: argocd
spec:
  generators:
    - git:
        repoURL: ` + url + `/other.git
        revision: HEAD
        directories: [{path: "*"}]
    - scmProvider:
        github: {organization: acme, api: ` + url + `}
  template:
    metadata: {name: '{{path.basename}}'}
    spec:
      project: default
      source: {repoURL: ` + url + `/other.git, path: '{{path}}'}
      destination: {server: https://kubernetes.default.svc, namespace: x}
`,
	}
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tug.yaml"), []byte("repoURL: https://github.com/acme/offline.git\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperValidateChild$", "--", "validate", "-o", "json", dir)
	cmd.Env = append(os.Environ(), "TUG_VALIDATE_CHILD=1", "HOME="+t.TempDir(), "XDG_CACHE_HOME="+t.TempDir(),
		"GIT_TERMINAL_PROMPT=0", "NO_PROXY=", "no_proxy=")
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"} {
		cmd.Env = append(cmd.Env, v+"="+url)
	}
	out, err := cmd.Output()
	if n := rec.count() - 1; n != 0 {
		t.Errorf("tug validate opened %d network connections; it must open none offline", n)
	}
	if err != nil {
		t.Fatalf("tug validate: %v\n%s", err, out)
	}
	var res struct {
		Findings []struct {
			Rule, Severity, Message string
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	for _, want := range []string{url + "/charts", addr + "/charts", url + "/values/web.yaml", url + "/acme/base.git//deploy?ref=v1",
		"github.com/acme/base//deploy?ref=v1", url + "/charts/redis", "db 1.0.0 from " + url + "/charts", "cache ~0.4.0 from oci://" + addr + "/charts", url + "/values/umbrella.yaml", url + "/other.git", "scmProvider"} {
		found := false
		for _, f := range res.Findings {
			if strings.Contains(f.Message, want) && f.Severity == "info" {
				found = true
			}
		}
		if !found {
			t.Errorf("no info finding names %s; findings:\n%s", want, out)
		}
	}
}

func app(name, source string) string {
	return `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: ` + name + `
  namespace: argocd
spec:
  project: default
  source:` + source + `
  destination:
    server: https://kubernetes.default.svc
    namespace: ` + name + `
`
}
