package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tug-gitops/tug/internal/forge"
	"github.com/tug-gitops/tug/internal/promote"
)

// labEnv runs `tug lab env` and returns what it exports.
func labEnv(t *testing.T) map[string]string {
	t.Helper()
	out, err := tugCmd(context.Background(), time.Minute, "lab", "env")
	if err != nil {
		t.Fatalf("tug lab env: %v\n%s", err, out)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = strings.Trim(v, `"`)
	}
	return vars
}

// The lab's promotion as docs/promotion.md tells it: after
// `eval "$(tug lab env)"`, `tug promote backend --merge --wait` needs no
// --forge and no token in the environment (the forge's kind comes from
// TUG_FORGE_URL, the token from the file TUG_FORGE_TOKEN_FILE names), and
// returns only once backend-prod is Synced and Healthy at the merge commit
// and runs dev's tag.
func TestPromoteMergeWaitWithTheLabsEnvironment(t *testing.T) {
	restorePromotionState(t)
	files := forgeFiles(t, backendDevValues, backendProdValues)
	a, b := tagOf(t, backendDevValues, files[backendDevValues]), tagOf(t, backendProdValues, files[backendProdValues])
	if a == b {
		t.Fatalf("dev and prod both run %s on the forge; the test needs two different tags", a)
	}
	start := forgeHead(t)
	mustTugWait(t, 5*time.Minute, start, "backend-dev", "backend-prod")

	vars := labEnv(t)
	if vars["TUG_FORGE_URL"] == "" {
		t.Fatalf("tug lab env exports no TUG_FORGE_URL: %v", vars)
	}
	tokenFile := vars[forge.TokenFileEnv]
	if tokenFile == "" {
		// tug lab env does not export it yet: the file it names in its comment.
		tokenFile = filepath.Join(env.dir, "gitea", "admin-token")
		t.Logf("tug lab env exports no %s; using %s", forge.TokenFileEnv, tokenFile)
	}
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, forge.TokenEnv+"=") && !strings.HasPrefix(kv, "GITHUB_TOKEN=") && !strings.HasPrefix(kv, "TUG_FORGE") {
			environ = append(environ, kv)
		}
	}
	environ = append(environ, "KUBECONFIG="+env.userKube, "TUG_FORGE_URL="+vars["TUG_FORGE_URL"], forge.TokenFileEnv+"="+tokenFile)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.tug, "promote", "backend", "--from", "dev", "--to", "prod",
		"--merge", "--wait", "--timeout", "5m", "--kubeconfig", env.kubeconfig, "-o", "json")
	cmd.Dir, cmd.Env = env.repo, environ
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("tug promote --merge --wait: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	took := time.Since(began)
	var res promote.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("decode tug promote -o json: %v\n%s", err, stdout.String())
	}
	if !res.Merged || res.MergeCommit == "" || res.NewTag != a || res.OldTag != b {
		t.Fatalf("unexpected result: %s", mustJSON(res))
	}
	if res.Deployed == nil || !res.Deployed.Ready {
		t.Fatalf("tug promote --wait returned without backend-prod deployed: %s\nstderr:\n%s", mustJSON(res.Deployed), stderr.String())
	}
	t.Logf("tug promote --merge --wait: %s in all, %.1fs of it waiting for backend-prod at %s", took.Round(time.Millisecond), res.Deployed.Seconds, res.MergeCommit[:12])
	// What --wait promised holds when it returns, without waiting more.
	expectProd(t, "backend", res.MergeCommit, a)
	if strings.Contains(stderr.String(), strings.TrimSpace(readFile(t, tokenFile))) {
		t.Error("the forge token appears in tug promote's output")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
