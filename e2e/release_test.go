package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tug-gitops/tug/internal/giteaserver"
	"github.com/tug-gitops/tug/internal/release"
)

// releaseEnviron is the environment of a `tug release` in the lab: the
// forge as for promote, and the forge's registry with the admin's token
// (as `tug lab env` exports them).
func releaseEnviron(t testing.TB) []string {
	t.Helper()
	reg := env.status.Endpoints["registry"]
	if reg == "" {
		t.Fatalf("the lab status has no registry endpoint: %s", mustJSON(env.status.Endpoints))
	}
	return append(promoteEnviron(t), release.RegistryEnv+"="+reg,
		release.UserEnv+"="+giteaserver.DefaultAdminUser, release.TokenEnv+"="+forgeAdminToken(t))
}

// mustRelease runs `tug release ARGS -o json` in dir (a clone of the forge).
func mustRelease(t *testing.T, dir string, args ...string) release.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	full := append(append([]string{"release"}, args...), "--forge", "gitea", "-o", "json")
	cmd := exec.CommandContext(ctx, env.tug, full...)
	cmd.Dir, cmd.Env = dir, releaseEnviron(t)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("tug %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(full, " "), err, out.String(), errOut.String())
	}
	var res release.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("decode tug release -o json: %v\n%s", err, out.String())
	}
	return res
}

// backendImageID is the imageID of the running, ready backend pods of a
// namespace (an error unless all of them agree).
func backendImageID(ctx context.Context, t *testing.T, namespace string) (string, error) {
	pods, err := clientset(t).CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=backend"})
	if err != nil {
		return "", err
	}
	ids := map[string]bool{}
	var seen []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, cs := range p.Status.ContainerStatuses {
			seen = append(seen, fmt.Sprintf("%s ready=%t %s", p.Name, cs.Ready, cs.ImageID))
			if cs.Ready {
				ids[cs.ImageID] = true
			}
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("backend pods in %s run %d images: %v", namespace, len(ids), seen)
	}
	for id := range ids {
		return id, nil
	}
	return "", nil
}

// expectBackendDigest waits until namespace's backend pods all run digest.
func expectBackendDigest(t *testing.T, namespace, digest string) {
	t.Helper()
	var last string
	eventually(t, 2*time.Minute, namespace+"'s backend pods run "+digest, func(ctx context.Context) error {
		id, err := backendImageID(ctx, t, namespace)
		last = id
		if err != nil {
			return err
		}
		if !strings.HasSuffix(id, "@"+digest) {
			return fmt.Errorf("they run %s", id)
		}
		return nil
	}, func() string { return last })
}

// backendInfo is GET /api/info of namespace's backend Service, through the
// API server's service proxy (the Service has no address on the host).
func backendInfo(ctx context.Context, t *testing.T, namespace string) (map[string]any, error) {
	body, err := clientset(t).CoreV1().Services(namespace).ProxyGet("http", "backend", "8080", "/api/info", nil).DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("/api/info is not JSON: %v: %s", err, body)
	}
	return info, nil
}

// A change to the backend's code reaches prod by two merged pull requests:
// `tug release backend --merge` builds and pushes the image to the forge's
// registry and merges the dev pull request pinning its digest, `tug promote
// --merge` copies tag and digest to prod; what the pods answer and the
// digest they run prove it. Reverting the promotion brings prod back.
func TestRealNodeReleaseReachesProd(t *testing.T) {
	needRealNode(t)
	restorePromotionState(t)
	const rel = "apps/backend/server.go"
	files := forgeFiles(t, rel, "charts/frontend/values-dev.yaml", "charts/frontend/values-prod.yaml", backendProdValues)
	code := string(files[rel])
	field := "`json:\"environment\"`\n}"
	if !strings.Contains(code, field) || !strings.Contains(code, `info := Info{Service: "backend",`) {
		t.Fatalf("%s no longer has the Info struct this test extends:\n%s", rel, code)
	}
	code = strings.Replace(code, field, "`json:\"environment\"`\n\tReleasedBy  string `json:\"releasedBy\"`\n}", 1)
	code = strings.Replace(code, `info := Info{Service: "backend",`, `info := Info{ReleasedBy: "tug release", Service: "backend",`, 1)
	began := time.Now()
	sha := forgeWriteFiles(t, "backend: /api/info says who released it", map[string][]byte{rel: []byte(code)})
	t.Cleanup(func() { forgeWriteFiles(t, "e2e: restore "+rel, map[string][]byte{rel: files[rel]}) })
	feDev, feProd := tagOf(t, "frontend", files["charts/frontend/values-dev.yaml"]), tagOf(t, "frontend", files["charts/frontend/values-prod.yaml"])
	oldProdTag := tagOf(t, backendProdValues, files[backendProdValues])
	ctx := context.Background()
	oldProdImage, err := backendImageID(ctx, t, "shop-prod")
	if err != nil {
		t.Fatal(err)
	}

	dir, _ := forgeClone(t)
	const tag = "0.3.0"
	res := mustRelease(t, dir, "backend", "--tag", tag, "--commit", sha, "--merge")
	pushed := time.Since(began)
	if res.Change == nil || !res.Change.Merged || res.Change.MergeCommit == "" || !res.Pushed {
		t.Fatalf("tug release did not push and merge: %s", mustJSON(res))
	}
	mustTugWait(t, 5*time.Minute, res.Change.MergeCommit, "backend-dev")
	expectShop(t, time.Minute, "shop-dev", feDev, tag)
	devServing := time.Since(began)
	expectBackendDigest(t, "shop-dev", res.Digest)
	info, err := backendInfo(ctx, t, "shop-dev")
	if err != nil || info["releasedBy"] != "tug release" || info["version"] != tag {
		t.Fatalf("shop-dev's /api/info: %v, %v; want version %s and the new field releasedBy", info, err, tag)
	}

	promoted := mustPromote(t, "backend", "--from", "dev", "--to", "prod", "--merge")
	if !promoted.res.Merged || promoted.res.NewDigest != res.Digest || promoted.res.NewTag != tag {
		t.Fatalf("tug promote did not merge tag %s and digest %s together: %s", tag, res.Digest, mustJSON(promoted.res))
	}
	mustTugWait(t, 5*time.Minute, promoted.res.MergeCommit, "backend-prod")
	expectShop(t, time.Minute, "shop-prod", feProd, tag)
	prodServing := time.Since(began)
	expectBackendDigest(t, "shop-prod", res.Digest)
	t.Logf("commit → image pushed and dev PR merged %s (build %.2f s, push %.2f s); → dev serving %s; → prod serving %s",
		pushed.Round(10*time.Millisecond), res.BuildSeconds, res.PushSeconds, devServing.Round(10*time.Millisecond), prodServing.Round(10*time.Millisecond))

	revert := revertByPullRequest(t, promoted.res.MergeCommit, promoted.res.PR.Number)
	mustTugWait(t, 5*time.Minute, revert.MergeCommit, "backend-prod")
	expectShop(t, time.Minute, "shop-prod", feProd, oldProdTag)
	var last string
	eventually(t, 2*time.Minute, "shop-prod's backend pods run the image they ran before", func(ctx context.Context) error {
		id, err := backendImageID(ctx, t, "shop-prod")
		last = id
		if err != nil {
			return err
		}
		if id != oldProdImage {
			return fmt.Errorf("they run %s, want %s", id, oldProdImage)
		}
		return nil
	}, func() string { return last })
}
