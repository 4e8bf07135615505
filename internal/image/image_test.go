package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// layerFiles reads the image's single layer into path → header, content.
func layerFiles(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("image has %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	heads, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		heads[h.Name], data[h.Name] = h, b
	}
	return heads, data
}

func TestBuildIsReproducibleAndStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the backend twice")
	}
	ctx := context.Background()
	s := Spec{RepoRoot: repoRoot(t), App: "backend", Version: "9.8.7-stamped"}
	a, err := Build(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("same source, two digests: %s and %s", da, db)
	}
	other, err := Build(ctx, Spec{RepoRoot: s.RepoRoot, App: "backend", Version: "9.8.8-stamped"})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := other.Digest(); d == da {
		t.Fatalf("another version gave the same digest %s", d)
	}

	heads, data := layerFiles(t, a)
	bin := data["backend"]
	if len(bin) < 1<<20 || heads["backend"].Mode != 0o755 {
		t.Fatalf("/backend: %d bytes, mode %o", len(bin), heads["backend"].Mode)
	}
	if !bytes.Contains(bin, []byte("9.8.7-stamped")) {
		t.Error("the version is not stamped into the binary")
	}
	if bytes.Contains(bin, []byte(s.RepoRoot)) {
		t.Error("the binary holds the build machine's path (not built with -trimpath)")
	}
	if h := heads["tmp/"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o1777 {
		t.Errorf("/tmp: %+v, want a folder with mode 1777", h)
	}
	if !strings.Contains(string(data["etc/passwd"]), "nonroot:x:65532:65532:") || !strings.Contains(string(data["etc/group"]), "nonroot:x:65532:") {
		t.Errorf("/etc/passwd, /etc/group lack the nonroot user:\n%s\n%s", data["etc/passwd"], data["etc/group"])
	}
	for name, h := range heads {
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: owner %d:%d, time %s; want 0:0 at %s", name, h.Uid, h.Gid, h.ModTime, epoch)
		}
	}
	cf, err := a.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !reflect.DeepEqual(cf.Config.Entrypoint, []string{"/backend"}) || cf.Config.User != "65532:65532" {
		t.Errorf("config %+v", cf.Config)
	}
	if mt, _ := a.MediaType(); mt != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest media type %s, want OCI", mt)
	}
}

// dockerfileConfig reads what a Dockerfile's final stage sets: ENTRYPOINT,
// USER and EXPOSE (the only config instructions the services' Dockerfiles use).
func dockerfileConfig(t *testing.T, path string) (entrypoint []string, user string, ports []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var others []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM": // a new stage: only the last counts
			entrypoint, user, ports, others = nil, "", nil, nil
		case "ENTRYPOINT":
			rest := strings.TrimSpace(strings.TrimPrefix(sc.Text(), fields[0]))
			for _, p := range strings.Split(strings.Trim(rest, "[]"), ",") {
				entrypoint = append(entrypoint, strings.Trim(strings.TrimSpace(p), `"`))
			}
		case "USER":
			user = fields[1]
		case "EXPOSE":
			ports = fields[1:]
		case "ENV", "CMD", "WORKDIR", "VOLUME", "STOPSIGNAL", "LABEL", "HEALTHCHECK":
			others = append(others, fields[0])
		}
	}
	if len(others) > 0 {
		t.Errorf("%s's final stage sets %v, which this test does not compare: extend it", path, others)
	}
	return entrypoint, user, ports
}

// The Dockerfiles stay the way to build the images with Docker: the lab's
// images must carry the same configuration. USER nonroot resolves through
// the distroless base's /etc/passwd to 65532; ours has the same entry.
func TestConfigMatchesDockerfiles(t *testing.T) {
	root := repoRoot(t)
	for _, app := range []string{"backend", "frontend"} {
		entry, user, ports := dockerfileConfig(t, filepath.Join(root, "apps", app, "Dockerfile"))
		cfg := Config(app, 8080)
		if !reflect.DeepEqual(entry, cfg.Entrypoint) {
			t.Errorf("%s: Dockerfile ENTRYPOINT %q, image %q", app, entry, cfg.Entrypoint)
		}
		if user != "nonroot" || cfg.User != "65532:65532" {
			t.Errorf("%s: Dockerfile USER %q, image %q: both must be the nonroot user 65532", app, user, cfg.User)
		}
		for _, p := range ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			if _, ok := cfg.ExposedPorts[p]; !ok {
				t.Errorf("%s: Dockerfile exposes %s, the image %v", app, p, cfg.ExposedPorts)
			}
		}
		if len(ports) != len(cfg.ExposedPorts) {
			t.Errorf("%s: Dockerfile exposes %v, the image %v", app, ports, cfg.ExposedPorts)
		}
	}
	if !strings.Contains(string(nonrootFiles()[1].Data), "nonroot:x:65532:65532:") {
		t.Error("the image's /etc/passwd does not map nonroot to 65532 as distroless does")
	}
}

func TestChartImagesNameEveryValuesTag(t *testing.T) {
	got, err := ChartImages(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"backend":  {"ghcr.io/tug-gitops/backend:0.2.0", "ghcr.io/tug-gitops/backend:0.1.0"},
		"frontend": {"ghcr.io/tug-gitops/frontend:0.2.0", "ghcr.io/tug-gitops/frontend:0.1.0"},
	}
	for app, refs := range want {
		for _, r := range refs {
			if !contains(got[app], r) {
				t.Errorf("%s: %v lacks %s", app, got[app], r)
			}
		}
	}
}

func TestChartImagesRejectsUnquotedTag(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"apps/web", "charts/web"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "charts/web/values.yaml"), []byte("image:\n  repository: x/web\n  tag: \"1.0\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "charts/web/values-dev.yaml"), []byte("image:\n  tag: 0.10\n"), 0o644)
	_, err := ChartImages(dir)
	if err == nil || !strings.Contains(err.Error(), "values-dev.yaml") || !strings.Contains(err.Error(), "quote it") {
		t.Fatalf("err = %v, want one naming values-dev.yaml and saying to quote the tag", err)
	}
}

func TestArchiveIsCachedAndImportable(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the frontend")
	}
	cache := t.TempDir()
	s := Spec{RepoRoot: repoRoot(t), App: "frontend", Version: "0.2.0"}
	refs := []string{"ghcr.io/tug-gitops/frontend:0.2.0"}
	p1, err := Archive(context.Background(), s, refs, cache)
	if err != nil {
		t.Fatal(err)
	}
	st1, _ := os.Stat(p1)
	p2, err := Archive(context.Background(), s, refs, cache)
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(p2)
	if p1 != p2 || !st1.ModTime().Equal(st2.ModTime()) {
		t.Errorf("second Archive rebuilt: %s then %s", p1, p2)
	}
	img, err := tarball.ImageFromPath(p1, nil)
	if err != nil {
		t.Fatalf("the archive is not an image tarball: %v", err)
	}
	if cf, _ := img.ConfigFile(); cf.Config.Entrypoint[0] != "/frontend" {
		t.Errorf("entrypoint %v", cf.Config.Entrypoint)
	}
	if ents, _ := os.ReadDir(cache); len(ents) != 1 {
		t.Errorf("cache holds %d files, want the archive only", len(ents))
	}
}

func TestTag(t *testing.T) {
	for ref, want := range map[string]string{"ghcr.io/a/b:0.2.0": "0.2.0", "localhost:5000/b": "latest", "b:1": "1"} {
		if got := Tag(ref); got != want {
			t.Errorf("Tag(%q) = %q, want %q", ref, got, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
