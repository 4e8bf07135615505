package diff

import (
	"slices"
	"strings"
	"testing"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// A digest in an environment's values pins the image: the Deployment runs
// repository@digest, while the version label and APP_VERSION keep the tag.
func TestDigestPinsImageByDigest(t *testing.T) {
	dir := newRepo(t)
	base := git(t, dir, "rev-parse", "HEAD")
	edit(t, dir, "charts/backend/values-dev.yaml", `digest: ""`, `digest: "`+testDigest+`"`)
	head := commitAll(t, dir, "pin")
	res := runDiff(t, dir, base, head)
	if got := appNames(res); !slices.Equal(got, []string{"backend-dev:changed"}) {
		t.Fatalf("changed apps = %v, want only backend-dev", got)
	}
	var plus, minus []string
	for _, r := range res.Apps[0].Resources {
		p, m := changedLines(r.Diff)
		plus, minus = append(plus, p...), append(minus, m...)
	}
	wantPlus := []string{"+        image: ghcr.io/tug-gitops/backend@" + testDigest}
	wantMinus := []string{"-        image: ghcr.io/tug-gitops/backend:0.2.0"}
	if !slices.Equal(plus, wantPlus) || !slices.Equal(minus, wantMinus) {
		t.Fatalf("changed lines:\n+ %q\n- %q\nwant only the image line, to %q", plus, minus, wantPlus)
	}
}

// A malformed digest fails the render with a message naming the value,
// rather than deploying a reference the node cannot pull.
func TestMalformedDigestFailsRender(t *testing.T) {
	dir := newRepo(t)
	base := git(t, dir, "rev-parse", "HEAD")
	edit(t, dir, "charts/frontend/values-prod.yaml", `digest: ""`, `digest: "sha256:abc"`)
	head := commitAll(t, dir, "bad pin")
	res := runDiff(t, dir, base, head)
	if len(res.Apps) != 1 || res.Apps[0].Name != "frontend-prod" || !strings.Contains(res.Apps[0].Error, `image.digest "sha256:abc" is not sha256:`) {
		t.Fatalf("want frontend-prod failing to render on the digest; got %+v", res.Apps)
	}
}
