//go:build !windows

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/tug-gitops/tug/internal/lab"
)

// lab status prints through the shared -o writer: the same record as JSON
// and as YAML (one set of field names), and a table for people.
func TestLabStatusFormats(t *testing.T) {
	root := t.TempDir()
	layout, err := lab.LayoutOf(root, "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(layout.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A lab that was stopped: no supervisor, no component alive.
	rec := `{"name":"t","stateDir":"` + layout.Dir + `","phase":"stopped","kubeconfig":"k","components":[]}`
	if err := os.WriteFile(filepath.Join(layout.Dir, "status.json"), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"lab", "status", "--name", "t", "--state-dir", root}
	decoders := map[string]func([]byte, any) error{
		"json": json.Unmarshal,
		"yaml": func(b []byte, v any) error { return yaml.Unmarshal(b, v) },
	}
	for format, decode := range decoders {
		var stdout, stderr bytes.Buffer
		if code := runWith(append(args, "-o", format), &stdout, &stderr); code != exitOK {
			t.Fatalf("-o %s: exit %d; stderr: %s", format, code, stderr.String())
		}
		var got lab.Status
		if err := decode(stdout.Bytes(), &got); err != nil {
			t.Fatalf("-o %s: not %s (%v): %q", format, format, err, stdout.String())
		}
		if got.Name != "t" || got.Phase != lab.PhaseStopped {
			t.Errorf("-o %s: name %q phase %q, want t and stopped: %s", format, got.Name, got.Phase, stdout.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runWith(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("table: exit %d; stderr: %s", code, stderr.String())
	}
	for _, want := range []string{"lab t: stopped", "COMPONENT", "total"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
}

// lab env exports the forge's registry for `tug release` and reads its
// token from the token file in the shell: the token is never printed.
func TestLabEnvExportsRegistryWithoutToken(t *testing.T) {
	root := t.TempDir()
	layout, err := lab.LayoutOf(root, "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(layout.ForgeTokenFile()), 0o700); err != nil {
		t.Fatal(err)
	}
	const token = "0123456789abcdef0123456789abcdef01234567"
	if err := os.WriteFile(layout.ForgeTokenFile(), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := `{"name":"t","stateDir":"` + layout.Dir + `","phase":"ready","kubeconfig":"k","endpoints":{"registry":"127.0.0.1:3000"}}`
	if err := os.WriteFile(filepath.Join(layout.Dir, "status.json"), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runWith([]string{"lab", "env", "--name", "t", "--state-dir", root}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d; stderr: %s", code, stderr.String())
	}
	out := stdout.String()
	if strings.Contains(out, token) {
		t.Fatalf("lab env printed the token:\n%s", out)
	}
	script := out + `printf '%s|%s|%s' "$TUG_REGISTRY" "$TUG_REGISTRY_USER" "$TUG_REGISTRY_TOKEN"`
	got, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, out)
	}
	if want := "127.0.0.1:3000|tug-admin|" + token; string(got) != want {
		t.Errorf("after eval: %q, want %q\n%s", got, want, out)
	}
}
