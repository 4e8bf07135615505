package e2e

// The forge is the lab's container registry, and the real node pulls the
// charts' images (ghcr.io/tug-gitops/*, their real names) from it through
// containerd's registry mirror; nothing is imported by hand, and a pull the
// mirror cannot answer never leaves the machine.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tug-gitops/tug/internal/image"
)

// Every product container runs the image the forge's registry holds under
// its tag: its imageID is the digest a plain registry client reads there.
func TestRealNodePullsImagesFromForgeRegistry(t *testing.T) {
	needRealNode(t)
	reg := env.status.Endpoints["registry"]
	if reg == "" {
		t.Fatalf("lab status has no registry endpoint: %v", env.status.Endpoints)
	}
	ctx := context.Background()
	pods, err := clientset(t).CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name in (backend,frontend)"})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			if !strings.HasPrefix(c.Image, "ghcr.io/tug-gitops/") || c.ImageID == "" {
				continue
			}
			target, err := image.Retarget(c.Image, reg)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := name.ParseReference(target)
			if err != nil {
				t.Fatal(err)
			}
			d, err := remote.Head(ref, remote.WithContext(ctx)) // anonymous, as containerd pulls
			if err != nil {
				t.Fatalf("%s/%s runs %s; the registry answers %v", p.Namespace, p.Name, c.Image, err)
			}
			if !strings.HasSuffix(c.ImageID, "@"+d.Digest.String()) {
				t.Errorf("%s/%s runs %s as %s; the forge's registry has %s", p.Namespace, p.Name, c.Image, c.ImageID, d.Digest)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatalf("no running product container to check among %d pods", len(pods.Items))
	}
	t.Logf("%d product containers run the digests the forge's registry (%s) serves", checked, reg)
}

// A tag the mirror lacks fails at once: containerd falls back to
// https://ghcr.io only through the proxy on a closed loopback port. The
// kubelet's event reports the mirror's "not found" (containerd 2 reports
// the most telling of its hosts' errors); containerd's log has the
// fallback's, and no name lookup.
func TestRealNodeMissingImageFailsFastOnHost(t *testing.T) {
	needRealNode(t)
	ctx := context.Background()
	cs := clientset(t)
	no, uid := false, int64(65532)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "missing-image-", Namespace: "default"},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: &no,
			SecurityContext:              &corev1.PodSecurityContext{RunAsUser: &uid},
			Containers:                   []corev1.Container{{Name: "c", Image: "ghcr.io/tug-gitops/backend:no-such-tag", ImagePullPolicy: corev1.PullIfNotPresent}},
		},
	}
	created, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.CoreV1().Pods("default").Delete(context.Background(), created.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	start := time.Now()
	var events string
	eventually(t, 60*time.Second, "the kubelet reports the failed pull", func(ctx context.Context) error {
		evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + created.Name})
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, e := range evs.Items {
			fmt.Fprintf(&b, "%s %s: %s\n", e.Reason, e.LastTimestamp.Format(time.RFC3339), e.Message)
			if e.Reason == "Failed" && strings.Contains(e.Message, "no-such-tag") {
				events = b.String()
				return nil
			}
		}
		events = b.String()
		return fmt.Errorf("no failed pull yet")
	}, func() string { return events })
	took := time.Since(start)
	t.Logf("a missing tag failed %s after the pod was created:\n%s", took.Round(10*time.Millisecond), events)
	var fallback string
	eventually(t, 30*time.Second, "containerd's log shows the fallback to ghcr.io failing at the closed loopback proxy", func(ctx context.Context) error {
		data, err := os.ReadFile(env.layout.Log("containerd"))
		if err != nil {
			return err
		}
		fallback = ""
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.Contains(line, "no-such-tag") {
				continue
			}
			if strings.Contains(line, "lookup ghcr.io") {
				return fmt.Errorf("containerd looked ghcr.io up: %s", line)
			}
			if strings.Contains(line, "host=ghcr.io") {
				fallback += line + "\n"
			}
		}
		if !strings.Contains(fallback, "proxyconnect tcp: dial tcp 127.0.0.1:9") {
			return fmt.Errorf("no failed fallback through 127.0.0.1:9 in %s", env.layout.Log("containerd"))
		}
		return nil
	}, func() string { return fallback })
}
