package image

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestRetarget(t *testing.T) {
	for ref, want := range map[string]string{
		"ghcr.io/tug-gitops/backend:0.2.0": "127.0.0.1:3000/tug-gitops/backend:0.2.0",
		"ghcr.io/a/b/c:1":                  "127.0.0.1:3000/a/b/c:1",
	} {
		if got, err := Retarget(ref, "127.0.0.1:3000"); err != nil || got != want {
			t.Errorf("Retarget(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	if _, err := Retarget("UPPER/Case:x", "127.0.0.1:1"); err == nil {
		t.Error("a bad reference was retargeted")
	}
}

// Publish puts every tag the values files name into the registry under
// the charts' repository paths, and a second run pushes nothing.
func TestPublishPushesEachTagOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the apps")
	}
	var puts atomic.Int32
	reg := registry.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			puts.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	cache := t.TempDir()
	charts, err := ChartImages(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, rs := range charts {
		refs = append(refs, rs...)
	}
	got, err := Publish(ctx, repoRoot(t), cache, host, authn.Anonymous)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(refs) || int(puts.Load()) != len(refs) {
		t.Fatalf("first publish handled %d references with %d manifest pushes; the charts name %d: %v", len(got), puts.Load(), len(refs), refs)
	}
	for _, p := range got {
		if p.Skip {
			t.Errorf("%s skipped on an empty registry", p.Source)
		}
		ref, err := name.ParseReference(p.Target)
		if err != nil {
			t.Fatal(err)
		}
		d, err := remote.Head(ref)
		if err != nil || d.Digest != p.Digest {
			t.Errorf("%s: registry has %v (%v), pushed %s", p.Target, d, err, p.Digest)
		}
		if !strings.HasPrefix(p.Target, host+"/") || !strings.HasSuffix(p.Source, strings.TrimPrefix(p.Target, host)) {
			t.Errorf("%s went to %s", p.Source, p.Target)
		}
	}
	again, err := Publish(ctx, repoRoot(t), cache, host, authn.Anonymous)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range again {
		if !p.Skip {
			t.Errorf("second publish pushed %s again", p.Target)
		}
	}
	if int(puts.Load()) != len(refs) {
		t.Errorf("second publish pushed %d manifests", int(puts.Load())-len(refs))
	}
}
