package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// PauseRef is the sandbox image the lab's containerd is configured with. It
// is built here from Kubernetes' pause.c, never pulled: no registry outside
// the machine is reachable, and a lab must not depend on one.
const PauseRef = "localhost/tug/pause:3.10"

// Pause compiles pauseC (k8s.io/kubernetes' build/pause/linux/pause.c)
// statically with gcc and makes the pause image: /pause, run as 65535 like
// upstream's.
func Pause(ctx context.Context, pauseC string) (v1.Image, error) {
	tmp, err := os.MkdirTemp("", "tug-pause-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "pause")
	cmd := exec.CommandContext(ctx, "gcc", "-Os", "-static", "-s", "-Wall", "-DVERSION=v3.10-tug", "-o", out, pauseC)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("image: build the pause binary (gcc -static %s): %w\n%s\nInstall gcc and the C library's static files (Debian: apt-get install gcc libc6-dev)", pauseC, err, log.String())
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	return FromFiles([]File{{Path: "pause", Mode: 0o755, Data: bin}}, v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535", WorkingDir: "/"})
}

// PauseArchive builds the pause image from pauseC into cacheDir (keyed by
// pause.c's content) and returns the tarball's path.
func PauseArchive(ctx context.Context, pauseC, cacheDir string) (string, error) {
	src, err := os.ReadFile(pauseC)
	if err != nil {
		return "", fmt.Errorf("image: the pause image's source: %w", err)
	}
	sum := sha256.Sum256(append(src, PauseRef...))
	path := filepath.Join(cacheDir, "pause-"+hex.EncodeToString(sum[:8])+".tar")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	img, err := Pause(ctx, pauseC)
	if err != nil {
		return "", err
	}
	return path, WriteArchive(path, img, []string{PauseRef})
}
