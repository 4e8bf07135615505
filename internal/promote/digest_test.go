package promote

import (
	"bytes"
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	devDigest   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	otherDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// Promote copies the digest dev pins together with the tag, so prod runs
// the very bytes dev ran; a prod file without a digest key is refused with
// the fix rather than promoted by tag alone.
func TestPromoteCopiesDigest(t *testing.T) {
	ctx := context.Background()
	r, _ := fixtureRepo(t, "backend", "other")
	f := adminForge(t, r)
	addDigest := func(rel, value string) {
		t.Helper()
		if _, err := commitToMain(ctx, f, rel, func(b []byte) []byte {
			i := bytes.Index(b, []byte("\n  tag: "))
			j := i + 1 + bytes.IndexByte(b[i+1:], '\n')
			return append(append(append([]byte{}, b[:j+1]...), []byte("  digest: \""+value+"\"\n")...), b[j+1:]...)
		}); err != nil {
			t.Fatal(err)
		}
	}
	addDigest("charts/backend/values-dev.yaml", devDigest)
	addDigest("charts/backend/values-prod.yaml", "")

	res, err := Run(ctx, opts(f, "backend"))
	if err != nil {
		t.Fatal(err)
	}
	if res.NewTag != "0.2.0" || res.NewDigest != devDigest || res.OldDigest != "" {
		t.Fatalf("result: %+v", res)
	}
	got := string(readBranch(t, f, res.Branch, prodFile))
	if !strings.Contains(got, "  tag: \"0.2.0\"   # set by tug promote\n  digest: \""+devDigest+"\"\n") {
		t.Fatalf("prod file on the branch:\n%s", got)
	}
	if !strings.Contains(res.PR.Body, "`none (deployed by tag)` → `"+devDigest+"`") {
		t.Errorf("PR body does not show the digest change:\n%s", res.PR.Body)
	}
	again, err := Run(ctx, opts(f, "backend"))
	if err != nil || again.PRCreated || again.PR.Number != res.PR.Number {
		t.Fatalf("re-run: %+v, %v", again, err)
	}

	addDigest("charts/other/values-dev.yaml", devDigest)
	_, err = Run(ctx, opts(f, "other"))
	if err == nil || !strings.Contains(err.Error(), "charts/other/values-prod.yaml has no image.digest to pin "+devDigest) {
		t.Fatalf("prod without a digest key: err = %v", err)
	}
}

func pod(name string, deleting bool, phase corev1.PodPhase, imageIDs ...string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.PodStatus{Phase: phase}}
	if deleting {
		now := metav1.Now()
		p.DeletionTimestamp = &now
	}
	for i, id := range imageIDs {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: []string{"backend", "sidecar"}[i], ImageID: id})
	}
	return p
}

func TestDigestVerdict(t *testing.T) {
	good := "ghcr.io/tug-gitops/backend@" + devDigest
	cases := []struct {
		name string
		pods []corev1.Pod
		want string // "" = allowed
	}{
		{"all pods run it", []corev1.Pod{pod("a", false, corev1.PodRunning, good), pod("b", false, corev1.PodRunning, "docker-pullable://"+good)}, ""},
		{"with a sidecar", []corev1.Pod{pod("a", false, corev1.PodRunning, good, "docker.io/library/proxy@"+otherDigest)}, ""},
		{"old pods going away are ignored", []corev1.Pod{pod("a", false, corev1.PodRunning, good), pod("old", true, corev1.PodRunning, "x@"+otherDigest), pod("done", false, corev1.PodSucceeded, "x@"+otherDigest)}, ""},
		{"one pod runs another digest", []corev1.Pod{pod("a", false, corev1.PodRunning, good), pod("b", false, corev1.PodRunning, "ghcr.io/tug-gitops/backend@"+otherDigest)}, `pod b runs backend="ghcr.io/tug-gitops/backend@` + otherDigest},
		{"not started yet", []corev1.Pod{pod("a", false, corev1.PodPending)}, "pod a runs no container status yet"},
		{"no imageID reported", []corev1.Pod{pod("a", false, corev1.PodRunning, "")}, `pod a runs backend=""`},
		{"a digest prefix is not the digest", []corev1.Pod{pod("a", false, corev1.PodRunning, "x@"+devDigest[:20])}, "does not run"},
		{"no pods", nil, "has no running pod (app.kubernetes.io/instance=backend-dev in namespace shop-dev)"},
	}
	for _, tc := range cases {
		got := digestVerdict(tc.pods, "backend-dev", "app.kubernetes.io/instance=backend-dev in namespace shop-dev", devDigest)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: verdict %q, want %q", tc.name, got, tc.want)
		}
	}
}
