// Package image builds the shop's OCI images without Docker: a static Go
// binary, /etc/passwd and /etc/group naming the nonroot user (65532) and a
// world-writable /tmp, in one reproducible layer on an empty base, with the
// same configuration the services' Dockerfiles give (entrypoint, user,
// exposed port). The same source and version always give the same digest.
//
// The lab builds each service once per image tag its charts name, stamps
// that tag into the binary (serve.BuildVersion) so a running pod reports
// what it really runs, and loads the images into its node's containerd
// under the charts' own image names.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/tug-gitops/tug/internal/procgroup"
)

// NonrootUID is the user the images run as: distroless's "nonroot", which
// the charts' securityContext names too.
const NonrootUID = 65532

// epoch is every file's and the image's timestamp, so builds are reproducible.
var epoch = time.Unix(0, 0).UTC()

// VersionVar is the variable a service's version is stamped into.
const VersionVar = "github.com/tug-gitops/tug/apps/internal/serve.BuildVersion"

// Spec says what to build.
type Spec struct {
	// RepoRoot is the module root holding go.mod and apps/.
	RepoRoot string
	// App is the service, a folder under apps/ ("backend").
	App string
	// Version is stamped into the binary (the image tag).
	Version string
	// Port is the exposed TCP port (8080 when zero).
	Port int
}

// Config is the runtime configuration every service image gets, matching
// the Dockerfiles: ENTRYPOINT ["/<app>"], USER nonroot, EXPOSE <port>.
func Config(app string, port int) v1.Config {
	if port == 0 {
		port = 8080
	}
	return v1.Config{
		Entrypoint:   []string{"/" + app},
		User:         fmt.Sprintf("%d:%d", NonrootUID, NonrootUID),
		ExposedPorts: map[string]struct{}{fmt.Sprintf("%d/tcp", port): {}},
		Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		WorkingDir:   "/",
	}
}

// Build compiles the service and makes its image.
func Build(ctx context.Context, s Spec) (v1.Image, error) {
	if s.App == "" || strings.ContainsAny(s.App, `/\.`) {
		return nil, fmt.Errorf("image: app %q is not a folder name under apps/", s.App)
	}
	if _, err := os.Stat(filepath.Join(s.RepoRoot, "apps", s.App)); err != nil {
		return nil, fmt.Errorf("image: no service %q: %w", s.App, err)
	}
	bin, err := goBuild(ctx, s)
	if err != nil {
		return nil, err
	}
	files := []File{{Path: s.App, Mode: 0o755, Data: bin}}
	return FromFiles(append(files, nonrootFiles()...), Config(s.App, s.Port))
}

// goBuild compiles ./apps/<app> statically, with the flags of the Dockerfiles
// (CGO off, no module downloads, paths trimmed, symbols stripped) and an
// empty build id, and returns the binary.
func goBuild(ctx context.Context, s Spec) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "tug-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, s.App)
	ldflags := "-s -w -buildid="
	if s.Version != "" {
		ldflags += " -X " + VersionVar + "=" + s.Version
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, "./apps/"+s.App)
	cmd.Dir = s.RepoRoot
	// The go command's work folder goes in tmp too: a cancelled build is
	// killed and cannot remove it itself. The compiler and linker it runs
	// are in its process group and are killed with it.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOPROXY=off", "GOFLAGS=-trimpath", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOTMPDIR="+tmp)
	procgroup.Own(cmd)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("image: go build ./apps/%s: %w\n%s", s.App, err, log.String())
	}
	return os.ReadFile(out)
}

// File is one entry of an image's layer.
type File struct {
	Path string // relative to /, no leading slash
	Mode int64  // permission bits (and setuid/sticky); a trailing "/" in Path makes a folder
	Data []byte
}

// nonrootFiles are the distroless base's files the services need: the
// nonroot user and group (so USER nonroot resolves) and a writable /tmp.
func nonrootFiles() []File {
	return []File{
		{Path: "etc/", Mode: 0o755},
		{Path: "etc/passwd", Mode: 0o644, Data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonrootUID, NonrootUID))},
		{Path: "etc/group", Mode: 0o644, Data: []byte(fmt.Sprintf("root:x:0:\nnobody:x:65534:\nnonroot:x:%d:\n", NonrootUID))},
		{Path: "tmp/", Mode: 0o1777},
	}
}

// FromFiles makes a one-layer OCI image on an empty base. Entries are
// sorted and carry fixed owners and timestamps, so the same files give the
// same digest.
func FromFiles(files []File, cfg v1.Config) (v1.Image, error) {
	layerTar, err := tarFiles(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "tug image", Comment: "static binary, nonroot user, /tmp"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

func tarFiles(files []File) ([]byte, error) {
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range sorted {
		h := &tar.Header{Name: f.Path, Mode: f.Mode, ModTime: epoch, Uname: "root", Gname: "root", Format: tar.FormatUSTAR}
		if strings.HasSuffix(f.Path, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
