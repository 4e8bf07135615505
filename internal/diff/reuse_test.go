package diff

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A head render taken over from the base gives the same result as
// rendering both revisions, for changes inside and outside charts; and it
// is taken for the Applications a change cannot reach.
func TestReusedRendersGiveTheSameDiff(t *testing.T) {
	dir := newRepo(t)
	base := git(t, dir, "rev-parse", "HEAD")
	steps := []struct {
		name   string
		change func()
		reused int // of 5: root, backend-dev/prod, frontend-dev/prod
	}{
		{"prod tag", func() { edit(t, dir, "charts/backend/values-prod.yaml", "tag:", "tag: bumped-") }, 3},
		{"a chart file only .Files.Get reads", func() {
			write(t, dir, "charts/frontend/banner.txt", "hello\n")
			edit(t, dir, "charts/frontend/templates/service.yaml", "metadata:", "metadata:\n  annotations: {banner: {{ .Files.Get \"banner.txt\" | trim | quote }}}")
		}, 3},
		{"the banner alone", func() { write(t, dir, "charts/frontend/banner.txt", "changed\n") }, 3},
		{"an Application's spec", func() {
			edit(t, dir, "infra/gitops/apps/frontend.yaml", "namespace: shop-dev", "namespace: shop-dev2")
		}, 3},
		{"a comment in tug.yaml", func() { edit(t, dir, "tug.yaml", "repoURL:", "# a comment\nrepoURL:") }, 5},
		{"tug.yaml's settings", func() { edit(t, dir, "tug.yaml", "  - prod", "  - prod\n  - staging") }, 0},
	}
	for _, st := range steps {
		st.change()
		head := commitAll(t, dir, st.name)
		var log bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		got, err := Run(ctx, Options{Dir: dir, Base: base, Head: head, Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		want, err := Run(ctx, Options{Dir: dir, Base: base, Head: head, renderBoth: true})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: reusing renders gave\n%s\nrendering both gave\n%s", st.name, text(t, got), text(t, want))
		}
		if n := strings.Count(log.String(), " reused="); n != 1 || !strings.Contains(log.String(), " reused="+strconv.Itoa(st.reused)+" ") {
			t.Errorf("%s: want %d renders reused, log: %s", st.name, st.reused, log.String())
		}
		base = head
	}
}
