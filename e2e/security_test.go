package e2e

// GITOPS-002: the controller is reachable only with restricted
// authentication. (Unauthenticated calls → 401 and the operator's CLI login
// are in lab_test.go.)

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tug-gitops/tug/internal/appstatus"
	"github.com/tug-gitops/tug/internal/bootstrap"
	"github.com/tug-gitops/tug/internal/lab"
)

// argoAPI calls Argo CD's REST API (the gRPC gateway) with an optional
// bearer token and returns the status code and body.
func argoAPI(t *testing.T, method, path, token string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, env.status.Endpoints["argocd"]+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := argoHTTP(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// argoLogin is POST /api/v1/session: the login the UI and the CLI use. It
// returns the session token, or an error with the status and message.
func argoLogin(t *testing.T, user, password string) (string, error) {
	t.Helper()
	code, body := argoAPI(t, http.MethodPost, "/api/v1/session", "", map[string]string{"username": user, "password": password})
	if code != http.StatusOK {
		return "", fmt.Errorf("login %s: HTTP %d %s", user, code, strings.TrimSpace(body))
	}
	var s struct{ Token string }
	if err := json.Unmarshal([]byte(body), &s); err != nil || s.Token == "" {
		return "", fmt.Errorf("login %s: no token in %d-byte answer", user, len(body))
	}
	return s.Token, nil
}

func deployerToken(t *testing.T) string {
	t.Helper()
	s, err := clientset(t).CoreV1().Secrets(bootstrap.Namespace).Get(context.Background(), bootstrap.CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok := string(s.Data[bootstrap.CredDeployerToken])
	if tok == "" {
		t.Fatalf("Secret %s/%s has no %s", bootstrap.Namespace, bootstrap.CredentialsSecret, bootstrap.CredDeployerToken)
	}
	return tok
}

// The built-in admin is off in the live configuration, has no initial
// password Secret, and cannot log in even with a real password.
func TestSecurityAdminDisabled(t *testing.T) {
	ctx := context.Background()
	cs := clientset(t)
	cm, err := cs.CoreV1().ConfigMaps(bootstrap.Namespace).Get(ctx, "argocd-cm", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["admin.enabled"] != "false" {
		t.Errorf("live argocd-cm admin.enabled = %q, want \"false\"", cm.Data["admin.enabled"])
	}
	if _, err := cs.CoreV1().Secrets(bootstrap.Namespace).Get(ctx, bootstrap.InitialAdminSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Secret %s exists (err %v); bootstrap must leave none", bootstrap.InitialAdminSecret, err)
	}
	// The operator's real password, tried as admin: refused like any
	// unknown login (Argo CD does not say whether the user exists).
	if tok, err := argoLogin(t, "admin", operatorPassword(t)); err == nil || tok != "" {
		t.Fatalf("admin logged in; the built-in admin must be disabled")
	} else {
		t.Logf("admin refused: %v", err)
	}
}

// The deployer's API token can sync a product app, and nothing more: no
// projects, no creating or deleting apps, not even reading the platform's
// root app.
func TestSecurityDeployerTokenLeastPrivilege(t *testing.T) {
	tok := deployerToken(t)
	ctx := context.Background()

	// Sync backend-dev. Automated sync may hold the app's operation slot
	// for a moment; Argo CD then answers "another operation is already in
	// progress", so try again.
	asked := time.Now().Add(-time.Second).UTC()
	eventually(t, 60*time.Second, "deployer syncs backend-dev", func(ctx context.Context) error {
		code, body := argoAPI(t, http.MethodPost, "/api/v1/applications/backend-dev/sync", tok, map[string]any{})
		if code != http.StatusOK {
			return fmt.Errorf("HTTP %d %s", code, body)
		}
		return nil
	}, nil)
	eventually(t, 60*time.Second, "a sync initiated by deployer", func(ctx context.Context) error {
		a, err := application(ctx, t, "backend-dev")
		if err != nil || a == nil {
			return fmt.Errorf("backend-dev: %v", err)
		}
		op := a.Status.OperationState
		if op == nil || !strings.HasPrefix(op.Operation.InitiatedBy.Username, "deployer") || op.StartedAt.Time.Before(asked) {
			return fmt.Errorf("last operation: %s", mustJSON(op))
		}
		if !op.Phase.Completed() {
			return fmt.Errorf("operation %s", op.Phase)
		}
		if !op.Phase.Successful() {
			t.Fatalf("deployer's sync of backend-dev %s: %s", op.Phase, op.Message)
		}
		return nil
	}, nil)
	_ = ctx

	project := map[string]any{"project": map[string]any{
		"metadata": map[string]any{"name": "e2e-deployer-project"},
		"spec": map[string]any{
			"sourceRepos":  []string{"*"},
			"destinations": []map[string]string{{"server": "*", "namespace": "*"}},
		},
	}}
	app := map[string]any{
		"metadata": map[string]any{"name": "e2e-deployer-app", "namespace": "argocd"},
		"spec": map[string]any{
			"project":     "shop",
			"source":      map[string]any{"repoURL": forgeRepoURL(t), "path": "charts/backend", "targetRevision": "main"},
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": "shop-dev"},
		},
	}
	denied := []struct {
		what, method, path string
		body               any
	}{
		{"create a project", http.MethodPost, "/api/v1/projects", project},
		{"delete project shop", http.MethodDelete, "/api/v1/projects/shop", nil},
		{"create an app in shop", http.MethodPost, "/api/v1/applications", app},
		// cascade=false: should the check ever fail, root recreates the app
		// and nothing it deployed is lost.
		{"delete app frontend-dev", http.MethodDelete, "/api/v1/applications/frontend-dev?cascade=false", nil},
		{"read the platform's root app", http.MethodGet, "/api/v1/applications/root", nil},
		{"update project shop", http.MethodPut, "/api/v1/projects/shop", project},
	}
	for _, d := range denied {
		code, body := argoAPI(t, d.method, d.path, tok, d.body)
		if code != http.StatusForbidden {
			t.Errorf("deployer may %s: %s %s answered HTTP %d %s, want 403", d.what, d.method, d.path, code, strings.TrimSpace(body))
			continue
		}
		t.Logf("deployer may not %s: 403 %s", d.what, strings.TrimSpace(body))
	}
	mustTugWait(t, 2*time.Minute, "", "backend-dev", "frontend-dev")
}

// Five wrong passwords lock the account for the failure window, even
// against the right password (ARGOCD_SESSION_FAILURE_MAX_FAIL_COUNT=5,
// ARGOCD_SESSION_FAILURE_WINDOW_SECONDS=300 in
// infra/argocd/patches/argocd-server-login.yaml). A success below the limit
// resets the count.
//
// Argo CD v3.2 keeps the failure count in argocd-server's memory
// (util/session/state.go), so restarting argocd-server lifts a lockout: the
// test does that afterwards instead of waiting out the 300 s window, so
// later tests can log in as operator again.
func TestSecurityLoginLockout(t *testing.T) {
	password := operatorPassword(t)
	wrong := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := argoLogin(t, "operator", "not-the-password"); err == nil {
				t.Fatalf("a wrong password logged in")
			}
		}
	}
	t.Cleanup(func() { restartArgoCDServer(t) })

	wrong(4)
	if _, err := argoLogin(t, "operator", password); err != nil {
		t.Fatalf("4 wrong passwords (below the limit of 5) already locked operator out: %v", err)
	}
	wrong(5)
	_, err := argoLogin(t, "operator", password)
	if err == nil {
		t.Fatalf("operator logged in with the right password right after 5 wrong ones: no lockout")
	}
	t.Logf("after 5 wrong passwords the right one is refused: %v", err)
	logPath := component(t, "argocd-server").Log
	eventually(t, 10*time.Second, "argocd-server logs the lockout", func(context.Context) error {
		data, err := os.ReadFile(logPath)
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), "User operator had too many failed logins") {
			return fmt.Errorf("no \"too many failed logins\" line in %s", logPath)
		}
		return nil
	}, nil)
}

// restartArgoCDServer stops argocd-server; the lab's supervisor starts it
// again. Then the operator can log in.
func restartArgoCDServer(t *testing.T) {
	t.Helper()
	before := component(t, "argocd-server")
	if err := syscall.Kill(before.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "argocd-server restarted", func(ctx context.Context) error {
		st, err := lab.ProbeStatus(ctx, env.dir)
		if err != nil {
			return err
		}
		for _, c := range st.Components {
			if c.Name == "argocd-server" && c.PID != before.PID && c.Healthy {
				return nil
			}
		}
		return fmt.Errorf("argocd-server not restarted yet")
	}, nil)
	eventually(t, 60*time.Second, "operator can log in again", func(context.Context) error {
		_, err := argoLogin(t, "operator", operatorPassword(t))
		return err
	}, nil)
}

// An Application aimed at kube-system is refused by project shop: Argo CD
// reports InvalidSpecError and deploys nothing there.
func TestSecurityProjectRefusesKubeSystem(t *testing.T) {
	ctx := context.Background()
	dyn := dynamicClient(t)
	apps := dyn.Resource(appstatus.ApplicationGVR).Namespace(appstatus.DefaultNamespace)
	const name = "e2e-kube-system"
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Application",
		"metadata":   map[string]any{"name": name, "namespace": appstatus.DefaultNamespace},
		"spec": map[string]any{
			"project": "shop",
			"source": map[string]any{
				"repoURL": forgeRepoURL(t), "targetRevision": "main", "path": "charts/backend",
				"helm": map[string]any{"releaseName": "e2e-intruder", "valueFiles": []any{"values-dev.yaml"}},
			},
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": "kube-system"},
			"syncPolicy":  map[string]any{"automated": map[string]any{"prune": true, "selfHeal": true}},
		},
	}}
	if _, err := apps.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = apps.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	var msg string
	eventually(t, 60*time.Second, name+" has InvalidSpecError", func(ctx context.Context) error {
		a, err := application(ctx, t, name)
		if err != nil || a == nil {
			return fmt.Errorf("read: %v", err)
		}
		for _, c := range a.Status.Conditions {
			if c.Type == "InvalidSpecError" {
				msg = c.Message
				return nil
			}
		}
		return fmt.Errorf("conditions %s", mustJSON(a.Status.Conditions))
	}, func() string { return appStatusTable(t) })
	t.Logf("Argo CD: InvalidSpecError: %s", msg)
	if !strings.Contains(msg, "kube-system") || !strings.Contains(msg, "do not match any of the allowed destinations in project 'shop'") {
		t.Errorf("InvalidSpecError %q does not name the refused destination and project", msg)
	}
	// Nothing was deployed into kube-system.
	deps, err := clientset(t).AppsV1().Deployments("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		if strings.Contains(d.Name, "e2e-intruder") || strings.Contains(d.Name, "backend") {
			t.Errorf("Deployment kube-system/%s exists: the project let the app deploy", d.Name)
		}
	}
}
