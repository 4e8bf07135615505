package tools

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The vendored argo-ui replaces the git dependency in both files yarn
// reads, and nothing else changes.
func TestRewriteArgoUIDependency(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"package.json", "yarn.lock"} {
		if err := copyFile(filepath.Join("testdata", "argocd-ui", f), filepath.Join(dir, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := rewriteArgoUIDependency(dir); err != nil {
		t.Fatal(err)
	}
	pkg, _ := os.ReadFile(filepath.Join(dir, "package.json"))
	lock, _ := os.ReadFile(filepath.Join(dir, "yarn.lock"))
	if !strings.Contains(string(pkg), `"argo-ui": "file:../argo-ui"`) || strings.Contains(string(pkg), "git+") {
		t.Errorf("package.json not rewritten:\n%s", pkg)
	}
	if !strings.Contains(string(lock), "\"argo-ui@file:../argo-ui\":\n  version \"1.0.0\"\n  dependencies:") {
		t.Errorf("yarn.lock entry not rewritten:\n%s", lock)
	}
	if strings.Contains(string(lock), "git+https") || !strings.Contains(string(lock), "buffer-6.0.3.tgz") {
		t.Errorf("yarn.lock: the git resolution must go and the rest stay:\n%s", lock)
	}
	// A second rewrite finds nothing to rewrite and says which file and why.
	err := rewriteArgoUIDependency(dir)
	if err == nil || !strings.Contains(err.Error(), "package.json") || !strings.Contains(err.Error(), "no longer matches") {
		t.Fatalf("rewriting twice: %v", err)
	}
}

// Without Node the UI is not built, fast, and the error says how to fix it;
// the lab falls back to the API-only argocd on ErrUIUnavailable.
func TestEnsureArgoCDUIWithoutNode(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	b := &Builder{ModulesDir: fakeModules(t), CacheDir: t.TempDir()}
	_, err := b.EnsureArgoCDUI(context.Background())
	var ue *UIError
	if !errors.Is(err, ErrUIUnavailable) || !errors.As(err, &ue) {
		t.Fatalf("err = %v, want a UIError", err)
	}
	if !strings.Contains(ue.Reason, "node is not on PATH") || !strings.Contains(ue.Fix, "Node.js") {
		t.Fatalf("unhelpful: %v", err)
	}
}

func TestArgoCDUIPathIsKeyedApartFromArgoCD(t *testing.T) {
	b := &Builder{ModulesDir: fakeModules(t), CacheDir: t.TempDir()}
	api, _ := b.Path(ArgoCD)
	ui, err := b.ArgoCDUIPath()
	if err != nil {
		t.Fatal(err)
	}
	if api == ui || filepath.Base(ui) != "argocd" || !strings.HasPrefix(filepath.Base(filepath.Dir(ui)), "argocd-ui-") {
		t.Fatalf("API-only %s, with UI %s", api, ui)
	}
}

func TestCheckSHA256(t *testing.T) {
	p := filepath.Join(t.TempDir(), "argo-ui.tar.gz")
	os.WriteFile(p, []byte("not the archive"), 0o644)
	err := checkSHA256(p, argoUISHA256)
	if !errors.Is(err, ErrUIUnavailable) || !strings.Contains(err.Error(), argoUISHA256) {
		t.Fatalf("a tampered archive: %v", err)
	}
}

// A registry that does not answer is found out in seconds, with the fix,
// rather than after yarn's minutes of retries.
func TestRegistryDown(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("npm_config_registry", "http://"+addr+"/")
	err = registryReachable(context.Background())
	if !errors.Is(err, ErrUIUnavailable) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "fix:") {
		t.Fatalf("registry down: %v", err)
	}
}

// The UI build adds the built UI to the source tree by -overlay: Go embeds
// the built files (and not the files only the tree has), the tree is left
// as it was, and of a module built before only the package that embeds
// the UI and its importers are compiled again.
func TestUIOverlayRecompilesOnlyTheEmbeddingPackages(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	ctx := context.Background()
	root := t.TempDir()
	src := &argoCDSource{dir: filepath.Join(root, "argo"), build: filepath.Join(root, "build")}
	files := map[string]string{
		"argo/go.mod":              "module example.com/argo\n\ngo 1.22\n",
		"argo/ui/ui.go":            "package ui\n\nimport \"embed\"\n\n//go:embed dist/app\nvar App embed.FS\n",
		"argo/ui/dist/app/gitkeep": "",
		"argo/other/other.go":      "package other\n\nconst Name = \"other\"\n",
		"argo/cmd/main.go": "package main\n\nimport (\n\t\"fmt\"\n\t\"io/fs\"\n\n\t\"example.com/argo/other\"\n\t\"example.com/argo/ui\"\n)\n\n" +
			"func main() {\n\tfs.WalkDir(ui.App, \".\", func(p string, d fs.DirEntry, _ error) error {\n\t\tif !d.IsDir() {\n\t\t\tb, _ := fs.ReadFile(ui.App, p)\n\t\t\tfmt.Printf(\"%s=%s\\n\", p, b)\n\t\t}\n\t\treturn nil\n\t})\n\tfmt.Println(other.Name)\n}\n",
		"build/go.mod":         "module example.com/build\n\ngo 1.22\n\nrequire example.com/argo v0.0.0\n\nreplace example.com/argo => " + src.dir + "\n",
		"built/index.html":     "<title>Argo CD</title>",
		"built/assets/main.js": "main()",
	}
	writeTree(t, root, files)
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	goBuild := func(args ...string) []string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-v", "-o", filepath.Join(root, "argocd")}, append(args, "example.com/argo/cmd")...)...)
		cmd.Dir, cmd.Env = src.build, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
		return strings.Fields(string(out))
	}
	goBuild() // the API-only build
	overlay := filepath.Join(root, "overlay.json")
	replace, err := src.uiOverlay(filepath.Join(root, "built"))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeOverlay(overlay, replace); err != nil {
		t.Fatal(err)
	}
	compiled := goBuild("-overlay", overlay)
	if strings.Join(compiled, " ") != "example.com/argo/ui example.com/argo/cmd" {
		t.Errorf("compiled again with the UI: %q, want only the ui package and its importer", compiled)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(root, "argocd")).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "dist/app/assets/main.js=main()\ndist/app/index.html=<title>Argo CD</title>\nother\n"
	if string(out) != want {
		t.Errorf("the binary embeds:\n%s\nwant:\n%s", out, want)
	}
	if entries, _ := os.ReadDir(filepath.Join(src.dir, "ui", "dist", "app")); len(entries) != 1 || entries[0].Name() != "gitkeep" {
		t.Errorf("the source tree's ui/dist/app changed: %v", entries)
	}
	if _, err := src.uiOverlay(filepath.Join(root, "empty")); err == nil {
		t.Error("an overlay from a missing or empty build must fail")
	}
}

// The source tree is made once, whole, at a path keyed like argocd's
// binary, with a module that replaces argo-cd by it; a tree left without
// its completion mark (an interrupted copy) is made again.
func TestArgoCDSourceIsMadeOnceAndStamped(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOWORK", "off")
	root := t.TempDir()
	files := map[string]string{
		"argo/go.mod":     "module " + argoCDModule + "\n\ngo 1.22\n",
		"argo/ui/ui.go":   "package ui\n",
		"clientgo/go.mod": "module k8s.io/client-go\n\ngo 1.22\n",
		"tools/argocd/go.mod": "module example.com/tools/argocd\n\ngo 1.22\n\nrequire (\n\t" + argoCDModule + " v3.2.11\n\tk8s.io/client-go v0.34.4\n)\n\n" +
			"replace (\n\t" + argoCDModule + " => " + filepath.Join(root, "argo") + "\n\tk8s.io/client-go => " + filepath.Join(root, "clientgo") + "\n)\n",
	}
	writeTree(t, root, files)
	b := &Builder{ModulesDir: filepath.Join(root, "tools"), CacheDir: filepath.Join(root, "cache", "bin")}
	ctx := context.Background()
	src, err := b.argoCDSource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Keyed like the binary without its settle handler, which the build
	// adds by overlay: the same tree serves both.
	r := recipes[ArgoCD]
	r.settle = false
	key, _ := b.key(r)
	if want := filepath.Join(root, "cache", "argocd-src", key, "argo-cd"); src.dir != want {
		t.Errorf("source at %s, want %s", src.dir, want)
	}
	if _, err := os.Stat(filepath.Join(src.dir, "ui", "ui.go")); err != nil {
		t.Errorf("the copy lacks ui/ui.go: %v", err)
	}
	mod, _ := os.ReadFile(filepath.Join(src.build, "go.mod"))
	if !strings.Contains(string(mod), argoCDModule+" => "+src.dir) {
		t.Errorf("the build module does not replace argo-cd by the copy:\n%s", mod)
	}
	for _, want := range []string{"common.version=3.2.11 ", "common.gitTag=v3.2.11 ", "common.kubectlVersion=v0.34.4"} {
		if !strings.Contains(src.ldflags(), want) {
			t.Errorf("ldflags %q lack %q", src.ldflags(), want)
		}
	}
	// Made once: a second call keeps the tree as it is.
	mark := filepath.Join(src.dir, "mark")
	os.WriteFile(mark, nil, 0o644)
	if _, err := b.argoCDSource(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Error("a complete tree was made again")
	}
	// Without its completion mark the tree is made again, whole.
	os.Remove(filepath.Join(filepath.Dir(src.dir), "complete"))
	if _, err := b.argoCDSource(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("an incomplete tree was used as it was")
	}
	if _, err := os.Stat(filepath.Join(src.dir, "ui", "ui.go")); err != nil {
		t.Errorf("the remade copy lacks ui/ui.go: %v", err)
	}
}

// The UI's work folder leaves its place at once and is deleted behind the
// caller's back, with what an earlier process left set aside; other
// builds' folders stay.
func TestRemoveInBackground(t *testing.T) {
	parent := t.TempDir()
	work, other, leftover := filepath.Join(parent, "key1"), filepath.Join(parent, "key2"), filepath.Join(parent, "key0"+removingSuffix+"-x")
	for _, d := range []string{filepath.Join(work, "node_modules", "a"), other, filepath.Join(leftover, "b")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removeInBackground(work)
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Fatalf("%s is still there after removeInBackground returned: %v", work, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) == 1 && names[0] == "key2" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s %s holds %v, want only key2", parent, names)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
