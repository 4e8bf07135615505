//go:build !windows

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tug-gitops/tug/internal/lab"
)

func TestNextStepsShowTheUI(t *testing.T) {
	st := &lab.Status{Name: "default", Endpoints: map[string]string{
		"kubernetes": "https://127.0.0.1:6443", "argocd": "https://127.0.0.1:8443", "argocd-ui": "https://127.0.0.1:8443/",
		"forge": "http://127.0.0.1:3000", "repository": "http://127.0.0.1:3000/tug/gitops.git",
	}}
	var b bytes.Buffer
	printNextSteps(&b, st)
	for _, want := range []string{"Argo CD web UI  https://127.0.0.1:8443/", "Git forge       http://127.0.0.1:3000\n", "Repository      http://127.0.0.1:3000/tug/gitops.git\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "Note:") || strings.Contains(b.String(), "%!") {
		t.Errorf("unexpected:\n%s", b.String())
	}

	delete(st.Endpoints, "argocd-ui")
	st.Notices = []string{"Argo CD web UI not available, API only: node is not on PATH (fix: install Node.js)"}
	b.Reset()
	printNextSteps(&b, st)
	if !strings.Contains(b.String(), "Argo CD web UI  not served (see below)") || !strings.Contains(b.String(), "Note: Argo CD web UI not available, API only: node is not on PATH (fix: install Node.js)") {
		t.Errorf("without the UI:\n%s", b.String())
	}
}
