package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
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

// runRelease runs `tug release ARGS -o json` in dir (a clone of the
// forge). It may run in a goroutine: it never fails the test itself.
func runRelease(environ []string, dir string, args ...string) (release.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	full := append(append([]string{"release"}, args...), "--forge", "gitea", "-o", "json")
	cmd := exec.CommandContext(ctx, env.tug, full...)
	cmd.Dir, cmd.Env = dir, environ
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	var res release.Result
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("tug %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(full, " "), err, out.String(), errOut.String())
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return res, fmt.Errorf("decode tug release -o json: %v\n%s", err, out.String())
	}
	if res.Change == nil || !res.Change.Merged || res.Change.MergeCommit == "" {
		return res, fmt.Errorf("tug %s did not merge its pull request: %s", strings.Join(full, " "), mustJSON(res))
	}
	return res, nil
}

// mustRelease is runRelease that fails the test on error.
func mustRelease(t *testing.T, dir string, args ...string) release.Result {
	t.Helper()
	res, err := runRelease(releaseEnviron(t), dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// changeBackendCode commits textual changes (old, new pairs; each old
// must occur) to the backend's server.go on the forge's main and restores
// the file when the test ends. It returns the commit.
func changeBackendCode(t *testing.T, message string, replacements ...string) string {
	t.Helper()
	const rel = "apps/backend/server.go"
	before := forgeFile(t, rel)
	code := string(before)
	for i := 0; i+1 < len(replacements); i += 2 {
		if !strings.Contains(code, replacements[i]) {
			t.Fatalf("%s on the forge no longer contains %q, which this test changes:\n%s", rel, replacements[i], before)
		}
		code = strings.Replace(code, replacements[i], replacements[i+1], 1)
	}
	sha := forgeWriteFiles(t, message, map[string][]byte{rel: []byte(code)})
	t.Cleanup(func() { forgeWriteFiles(t, "e2e: restore "+rel, map[string][]byte{rel: before}) })
	return sha
}

// imageID is the imageID of the running, ready pods of app (backend or
// frontend) in namespace (an error unless all of them agree).
func imageID(ctx context.Context, t *testing.T, namespace, app string) (string, error) {
	pods, err := clientset(t).CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + app})
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
		return "", fmt.Errorf("%s pods in %s run %d images: %v", app, namespace, len(ids), seen)
	}
	for id := range ids {
		return id, nil
	}
	return "", nil
}

// expectDigest waits until app's pods in namespace all run digest.
func expectDigest(t *testing.T, namespace, app, digest string) {
	t.Helper()
	var last string
	eventually(t, 2*time.Minute, namespace+"'s "+app+" pods run "+digest, func(ctx context.Context) error {
		id, err := imageID(ctx, t, namespace, app)
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
	files := forgeFiles(t, "charts/frontend/values-dev.yaml", "charts/frontend/values-prod.yaml", backendProdValues)
	sha := changeBackendCode(t, "backend: /api/info says who released it",
		"`json:\"environment\"`\n}", "`json:\"environment\"`\n\tReleasedBy  string `json:\"releasedBy\"`\n}",
		`info := Info{Service: "backend",`, `info := Info{ReleasedBy: "tug release", Service: "backend",`)
	feDev, feProd := tagOf(t, "frontend", files["charts/frontend/values-dev.yaml"]), tagOf(t, "frontend", files["charts/frontend/values-prod.yaml"])
	oldProdTag := tagOf(t, backendProdValues, files[backendProdValues])
	ctx := context.Background()
	oldProdImage, err := imageID(ctx, t, "shop-prod", "backend")
	if err != nil {
		t.Fatal(err)
	}

	// The clock starts with the commit in a checkout, as a developer's is.
	dir, _ := forgeClone(t)
	const tag = "0.3.0"
	began := time.Now()
	res := mustRelease(t, dir, "backend", "--tag", tag, "--commit", sha, "--merge")
	released := time.Now()
	// A second run in the same lab finds its build, byte for byte, there.
	if !res.Pushed && !res.AlreadyThere {
		t.Fatalf("tug release pushed nothing: %s", mustJSON(res))
	}
	mustTugWait(t, 5*time.Minute, res.Change.MergeCommit, "backend-dev")
	expectShop(t, time.Minute, "shop-dev", feDev, tag)
	devServing := time.Now()
	expectDigest(t, "shop-dev", "backend", res.Digest)
	info, err := backendInfo(ctx, t, "shop-dev")
	if err != nil || info["releasedBy"] != "tug release" || info["version"] != tag {
		t.Fatalf("shop-dev's /api/info: %v, %v; want version %s and the new field releasedBy", info, err, tag)
	}

	promoteStart := time.Now()
	promoted := mustPromote(t, "backend", "--from", "dev", "--to", "prod", "--merge")
	promotedAt := time.Now()
	if !promoted.res.Merged || promoted.res.NewDigest != res.Digest || promoted.res.NewTag != tag {
		t.Fatalf("tug promote did not merge tag %s and digest %s together: %s", tag, res.Digest, mustJSON(promoted.res))
	}
	mustTugWait(t, 5*time.Minute, promoted.res.MergeCommit, "backend-prod")
	expectShop(t, time.Minute, "shop-prod", feProd, tag)
	prodServing := time.Now()
	expectDigest(t, "shop-prod", "backend", res.Digest)
	ms := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	t.Logf("tug release (build %.2f s, push %.2f s, pull request opened and merged) %s; release merged → dev serving %s; "+
		"tug promote (gate, pull request opened and merged) %s; promotion merged → prod serving %s; release started → prod serving %s",
		res.BuildSeconds, res.PushSeconds, ms(released.Sub(began)), ms(devServing.Sub(released)),
		ms(promotedAt.Sub(promoteStart)), ms(prodServing.Sub(promotedAt)), ms(prodServing.Sub(began)))

	revert := revertByPullRequest(t, promoted.res.MergeCommit, promoted.res.PR.Number)
	mustTugWait(t, 5*time.Minute, revert.MergeCommit, "backend-prod")
	expectShop(t, time.Minute, "shop-prod", feProd, oldProdTag)
	var last string
	eventually(t, 2*time.Minute, "shop-prod's backend pods run the image they ran before", func(ctx context.Context) error {
		id, err := imageID(ctx, t, "shop-prod", "backend")
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

// A release whose pods never become ready stays in dev: the promotion
// gate refuses it, and prod's value file is untouched.
func TestRealNodeUnreadyReleaseNeverPassesTheGate(t *testing.T) {
	needRealNode(t)
	restorePromotionState(t)
	before := forgeFiles(t, backendProdValues)[backendProdValues]
	sha := changeBackendCode(t, "backend: never ready", `"/readyz":  serve.Healthz,`,
		`"/readyz":  func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "not ready", http.StatusServiceUnavailable) },`)
	dir, _ := forgeClone(t)
	res := mustRelease(t, dir, "backend", "--tag", "0.3.9", "--commit", sha, "--merge")
	// The new pods start (the startup probe passes) but never turn ready.
	var last string
	eventually(t, 2*time.Minute, "a shop-dev backend pod runs the release and is not ready", func(ctx context.Context) error {
		pods, err := clientset(t).CoreV1().Pods("shop-dev").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=backend"})
		if err != nil {
			return err
		}
		last = ""
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				last += fmt.Sprintf("%s started=%v ready=%t %s\n", p.Name, cs.Started != nil && *cs.Started, cs.Ready, cs.ImageID)
				if strings.HasSuffix(cs.ImageID, "@"+res.Digest) && cs.Started != nil && *cs.Started && !cs.Ready {
					return nil
				}
			}
		}
		return fmt.Errorf("no such pod yet")
	}, func() string { return last })
	r := runPromote(t, "backend", "--from", "dev", "--to", "prod")
	if r.err == nil {
		t.Fatalf("tug promote passed the gate with dev's pods unready: %s", r.stdout)
	}
	if !strings.Contains(r.stderr, "refusing to promote") {
		t.Errorf("tug promote failed, but not at its gate: %v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, r.stderr)
	}
	t.Logf("tug promote refused: %v\n%s", r.err, tailLines(r.stderr, 5))
	if after := forgeFiles(t, backendProdValues)[backendProdValues]; !bytes.Equal(after, before) {
		t.Errorf("%s changed although the gate refused:\n%s", backendProdValues, after)
	}
}

// Two releases of different services at once both land in dev.
func TestRealNodeTwoReleasesAtOnce(t *testing.T) {
	needRealNode(t)
	restorePromotionState(t)
	head := forgeHead(t)
	environ := releaseEnviron(t)
	apps := []string{"backend", "frontend"}
	results := make([]release.Result, len(apps))
	errs := make([]error, len(apps))
	dirs := make([]string, len(apps))
	for i := range apps {
		dirs[i], _ = forgeClone(t)
	}
	var wg sync.WaitGroup
	for i, app := range apps {
		wg.Go(func() {
			results[i], errs[i] = runRelease(environ, dirs[i], app, "--tag", "0.4.0", "--commit", head, "--merge")
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("release %s: %v", apps[i], err)
		}
	}
	mustTugWait(t, 5*time.Minute, forgeHead(t), "backend-dev", "frontend-dev")
	expectShop(t, time.Minute, "shop-dev", "0.4.0", "0.4.0")
	for i, app := range apps {
		expectDigest(t, "shop-dev", app, results[i].Digest)
	}
}
