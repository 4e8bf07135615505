package release

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkReleaseBuildPush measures a warm release of the backend image
// (the Go build cache filled once, as on a developer's machine or a cached
// CI runner): exporting the commit and building the image, alone and with
// the push to an in-process registry, side by side in one run. Each
// iteration uses a new tag, so the binary is linked anew and every push
// uploads a new layer, as a real release does. Goal: build+push ≤ 3 s.
func BenchmarkReleaseBuildPush(b *testing.B) {
	ctx := context.Background()
	src, err := openSource(sourceRepo(b), "")
	if err != nil {
		b.Fatal(err)
	}
	reg := newRegistry(b)
	if _, err := src.build(ctx, "backend", "warm"); err != nil {
		b.Fatal(err)
	}
	n := 0
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			n++
			if _, err := src.build(ctx, "backend", fmt.Sprintf("1.0.%d", n)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("build+push", func(b *testing.B) {
		var push time.Duration
		for b.Loop() {
			n++
			tag := fmt.Sprintf("1.0.%d", n)
			img, err := src.build(ctx, "backend", tag)
			if err != nil {
				b.Fatal(err)
			}
			_, ref, err := References("ghcr.io/tug-gitops/backend", tag, reg)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if pushed, err := Push(ctx, img, ref, nil, nil); err != nil || !pushed {
				b.Fatalf("push %s: pushed %v, %v", ref, pushed, err)
			}
			push += time.Since(start)
		}
		b.ReportMetric(push.Seconds()/float64(b.N), "push-s/op")
	})
}
