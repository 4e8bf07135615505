package giteaserver

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// The forge is a container registry: the admin token pushes into the
// public organization, anyone pulls from it (as containerd's mirror
// does, with no credentials), and nobody pushes without a token.
func TestRegistryPushWithTokenPullAnonymously(t *testing.T) {
	bin := giteaBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	state := t.TempDir()
	first, err := Start(ctx, Options{Binary: bin, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	oldToken := first.Token()
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// A state folder from before tokens could push images: its token is
	// replaced at the next start.
	older := strings.TrimSuffix(TokenScopes, ",write:package")
	if err := os.WriteFile(filepath.Join(state, "admin-token.scopes"), []byte(older+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Start(ctx, Options{Binary: bin, StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	if s.Token() == oldToken {
		t.Fatal("a token made with other scopes was kept")
	}
	if _, err := s.CreateRepo(ctx, "tug-gitops", "tug"); err != nil { // creates the public organization
		t.Fatal(err)
	}
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	ref, err := name.NewTag(s.Registry() + "/tug-gitops/backend:0.2.0")
	if err != nil {
		t.Fatal(err)
	}
	admin := &authn.Basic{Username: s.AdminUser(), Password: s.Token()}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(admin)); err != nil {
		t.Fatalf("push with the admin token: %v", err)
	}
	d, err := remote.Head(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("anonymous pull of a public package: %v", err)
	}
	if d.Digest != want {
		t.Errorf("registry has %s under %s, pushed %s", d.Digest, ref, want)
	}
	other, _ := random.Image(256, 1)
	err = remote.Write(ref, other, remote.WithContext(ctx))
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous push: got %v, want 401 Unauthorized", err)
	}
	if d, _ := remote.Head(ref, remote.WithContext(ctx)); d == nil || d.Digest != want {
		t.Errorf("the refused push changed %s: %v", ref, d)
	}
}
