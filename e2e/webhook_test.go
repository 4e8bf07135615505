package e2e

// The forge's push webhook, as a real installation has it: Gitea signs
// each push with the secret bootstrap generated, argocd-server checks it
// and refreshes the Applications on the repository at once. Nobody asks
// for a refresh in these tests; an unsigned or wrongly signed delivery is
// refused and refreshes nothing.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/bootstrap"
)

const refreshAnnotation = "argocd.argoproj.io/refresh"

// refreshWatch records who set an Application's refresh annotation, and
// when, for as long as it runs.
type refreshWatch struct {
	mu   sync.Mutex
	seen []refreshSeen
	stop func()
}

type refreshSeen struct {
	at       time.Time
	managers []string // field managers of the Application's metadata.annotations
}

func watchRefreshes(t testing.TB, app string) *refreshWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := dynamicClient(t).Resource(appstatus.ApplicationGVR).Namespace(appstatus.DefaultNamespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + app})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	rw := &refreshWatch{stop: func() { cancel(); w.Stop() }}
	go func() {
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok || ev.Type != watch.Modified {
				continue
			}
			if _, ok := u.GetAnnotations()[refreshAnnotation]; !ok {
				continue
			}
			s := refreshSeen{at: time.Now()}
			for _, mf := range u.GetManagedFields() {
				if mf.FieldsV1 != nil && strings.Contains(string(mf.FieldsV1.Raw), `"f:`+refreshAnnotation+`"`) {
					s.managers = append(s.managers, mf.Manager)
				}
			}
			rw.mu.Lock()
			rw.seen = append(rw.seen, s)
			rw.mu.Unlock()
		}
	}()
	return rw
}

func (rw *refreshWatch) all() []refreshSeen {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return append([]refreshSeen(nil), rw.seen...)
}

// A commit pushed to main reaches backend-dev through the webhook alone:
// the test only reads, and Argo CD compares the new commit well before
// its 60 s poll (timeout.reconciliation in infra/argocd).
func TestForgeWebhookSyncsPushWithoutRefresh(t *testing.T) {
	const app, file = "backend-dev", "charts/backend/values-dev.yaml"
	settled(t, app)
	rw := watchRefreshes(t, app)
	defer rw.stop()
	original := string(forgeFile(t, file))
	marker := fmt.Sprintf("# webhook test %d\n", time.Now().UnixNano())
	sha := forgeCommit(t, "e2e: webhook test", func(dir string) error { return writeFile(dir+"/"+file, original+marker) })
	defer func() {
		restored := forgeCommit(t, "e2e: webhook test: restore "+file, func(dir string) error { return writeFile(dir+"/"+file, original) })
		mustTugWait(t, 3*time.Minute, restored, app)
	}()
	pushed := time.Now()
	var last string
	eventually(t, 30*time.Second, app+" Synced at the pushed commit with no refresh request", func(ctx context.Context) error {
		a, err := application(ctx, t, app)
		if err != nil || a == nil {
			return fmt.Errorf("read %s: %v", app, err)
		}
		last = fmt.Sprintf("sync %s at %s, health %s", a.Status.Sync.Status, a.Status.Sync.Revision, a.Status.Health.Status)
		if a.Status.Sync.Revision != sha || a.Status.Sync.Status != "Synced" {
			return fmt.Errorf("%s", last)
		}
		return nil
	}, func() string { return last + "\n" + logTail("argocd-server", "webhook") })
	t.Logf("push → %s Synced at %s in %s, by the forge's webhook", app, sha[:12], time.Since(pushed).Round(10*time.Millisecond))
	seen := rw.all()
	if len(seen) == 0 {
		t.Fatalf("no refresh annotation was set on %s, yet it moved before its poll", app)
	}
	for _, s := range seen {
		for _, m := range s.managers {
			if !strings.Contains(m, "argocd") {
				t.Errorf("the refresh annotation was set by %q, not by argocd-server's webhook handler", m)
			}
		}
	}
	for _, s := range seen {
		t.Logf("refresh annotation seen %s after the push, set by %v", s.at.Sub(pushed).Round(10*time.Millisecond), s.managers)
	}
}

// A delivery signed with another secret is refused with 400 and
// refreshes nothing; the same payload signed with the lab's secret is
// taken (the control: the watch does see a refresh).
func TestForgeWebhookWrongSecretRefused(t *testing.T) {
	const app = "backend-dev"
	ctx := context.Background()
	settled(t, app)
	creds, err := clientset(t).CoreV1().Secrets(bootstrap.Namespace).Get(ctx, bootstrap.CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret := creds.Data[bootstrap.CredWebhookSecret]
	if len(secret) == 0 {
		t.Fatalf("tug-credentials has no %s", bootstrap.CredWebhookSecret)
	}
	head := forgeHead(t)
	repoWeb := strings.TrimSuffix(forgeRepoURL(t), ".git")
	body, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": head, "after": head,
		"commits":    []any{},
		"repository": map[string]any{"html_url": repoWeb, "clone_url": repoWeb + ".git", "default_branch": "main", "name": "tug", "full_name": "tug-gitops/tug"},
	})
	post := func(signature string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.status.Endpoints["argocd"]+"/api/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Gogs-Event", "push")
		req.Header.Set("X-Gitea-Event", "push")
		if signature != "" {
			req.Header.Set("X-Gogs-Signature", signature)
		}
		resp, err := argoHTTP(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	sign := func(key []byte) string {
		m := hmac.New(sha256.New, key)
		m.Write(body)
		return hex.EncodeToString(m.Sum(nil))
	}

	rw := watchRefreshes(t, app)
	defer rw.stop()
	for name, sig := range map[string]string{"wrong secret": sign([]byte("not-the-lab-secret")), "no signature": ""} {
		code, msg := post(sig)
		t.Logf("%s: %d %s", name, code, msg)
		if code != http.StatusBadRequest || !strings.Contains(msg, "HMAC verification failed") && !strings.Contains(msg, "Signature") {
			t.Errorf("%s: argocd-server answered %d %q, want 400 and the HMAC check's refusal", name, code, msg)
		}
	}
	eventually(t, 10*time.Second, "argocd-server logs the refused deliveries", func(context.Context) error {
		if l, _ := readLog("argocd-server"); !strings.Contains(l, "HMAC verification failed") {
			return fmt.Errorf("no HMAC failure logged")
		}
		return nil
	}, func() string { return logTail("argocd-server", "webhook") })
	if seen := rw.all(); len(seen) > 0 {
		t.Fatalf("%s was refreshed after refused deliveries only: %+v", app, seen)
	}
	refused := time.Now()
	code, msg := post(sign(secret))
	if code != http.StatusOK {
		t.Fatalf("the correctly signed delivery: %d %q, want 200", code, msg)
	}
	var seen []refreshSeen
	eventually(t, 30*time.Second, "the correctly signed delivery refreshes "+app, func(context.Context) error {
		if seen = rw.all(); len(seen) == 0 {
			return fmt.Errorf("no refresh yet")
		}
		return nil
	}, func() string { return logTail("argocd-server", "webhook") })
	if seen[0].at.Before(refused) {
		t.Errorf("%s was refreshed at %s, before the correctly signed delivery (%s): a refused one got through", app, seen[0].at.Format(time.StampMilli), refused.Format(time.StampMilli))
	}
}

// settled waits, reading only, until app is Synced with no refresh
// pending (a refresh a test before asked for is done).
func settled(t *testing.T, app string) {
	t.Helper()
	var last string
	eventually(t, 3*time.Minute, app+" Synced with no refresh pending", func(ctx context.Context) error {
		a, err := application(ctx, t, app)
		if err != nil || a == nil {
			return fmt.Errorf("read %s: %v", app, err)
		}
		_, pending := a.Annotations[refreshAnnotation]
		last = fmt.Sprintf("sync %s, refresh pending %v", a.Status.Sync.Status, pending)
		if pending || a.Status.Sync.Status != "Synced" {
			return fmt.Errorf("%s", last)
		}
		return nil
	}, func() string { return last })
}

func readLog(component string) (string, error) {
	b, err := os.ReadFile(env.layout.Log(component))
	return string(b), err
}

// logTail is a component's log lines holding word, for failure messages.
func logTail(component, word string) string {
	data, err := readLog(component)
	if err != nil {
		return err.Error()
	}
	var keep []string
	for _, l := range strings.Split(data, "\n") {
		if strings.Contains(strings.ToLower(l), word) {
			keep = append(keep, l)
		}
	}
	return "--- " + component + " (lines with " + word + ") ---\n" + tailLines(strings.Join(keep, "\n"), 30)
}
