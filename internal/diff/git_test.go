package diff

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// A blob git does not have, or a write that fails part way, is an error
// that names the file; the git process ends and later reads fail too,
// rather than reading answers out of step.
func TestBlobStoreFailsCleanly(t *testing.T) {
	dir := newRepo(t)
	g := gitRepo{dir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	files, err := g.tree(ctx, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.blobStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.read(files[:2], func(treeEntry, []byte) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("read %d files: %v", n, err)
	}
	stop := errors.New("stop")
	if err := s.read(files, func(treeEntry, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("got %v, want the callback's error", err)
	}
	if err := s.read(files[:1], func(treeEntry, []byte) error { return nil }); err == nil {
		t.Fatal("a read after a failed one succeeded")
	}
	if err := s.close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s, err = g.blobStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	missing := treeEntry{mode: "100644", oid: strings.Repeat("0", 40), path: "charts/gone.yaml"}
	err = s.read([]treeEntry{files[0], missing, files[1]}, func(treeEntry, []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "charts/gone.yaml") {
		t.Fatalf("got %v, want an error naming charts/gone.yaml", err)
	}
	if err := s.close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}
