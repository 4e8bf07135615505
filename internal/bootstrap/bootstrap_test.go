package bootstrap

import (
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/util/password"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// repoRoot is the repository this test runs in (infra/ is real, not a copy).
func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var fixedNow = func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }

// apply writes a plan into in-memory Secret data, as Run does on a cluster.
func apply(plan CredentialPlan, argocd, tug map[string][]byte) (map[string][]byte, map[string][]byte) {
	a := map[string][]byte{}
	for k, v := range argocd {
		a[k] = v
	}
	for k, v := range plan.ArgoCDSecret {
		a[k] = []byte(v)
	}
	if plan.TugSecret == nil {
		return a, tug
	}
	t := map[string][]byte{}
	for k, v := range plan.TugSecret {
		t[k] = []byte(v)
	}
	return a, t
}

func TestCredentialsFirstRunGeneratesEverythingSecondRunNothing(t *testing.T) {
	g := Generator{Now: fixedNow}
	plan, err := PlanCredentials(nil, nil, g)
	if err != nil {
		t.Fatal(err)
	}
	argocd, tug := apply(plan, nil, nil)
	for _, k := range []string{KeyServerSecret, KeyOperatorPassword, KeyOperatorMtime, KeyDeployerTokens} {
		if len(argocd[k]) == 0 {
			t.Errorf("argocd-secret %s not written", k)
		}
	}
	if got := string(argocd[KeyOperatorMtime]); got != "2026-11-26T12:00:00Z" {
		t.Errorf("passwordMtime = %q, want RFC3339 as Argo CD parses it", got)
	}
	pw := string(tug[CredOperatorPassword])
	if len(pw) < 20 {
		t.Errorf("operator password %q too short", pw)
	}
	if ok, _ := password.VerifyPassword(pw, string(argocd[KeyOperatorPassword])); !ok {
		t.Error("stored hash does not verify the stored password with Argo CD's own verifier")
	}
	if strings.Contains(string(argocd[KeyOperatorPassword]), pw) {
		t.Error("argocd-secret holds the plaintext password")
	}

	again, err := PlanCredentials(argocd, tug, Generator{Now: func() time.Time { return fixedNow().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed() || len(again.Actions) > 0 {
		t.Errorf("second run plans changes: %+v", again)
	}
}

func TestDeployerTokenIsAnArgoCDAPIKeyRegisteredInTheAccount(t *testing.T) {
	plan, err := PlanCredentials(nil, nil, Generator{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	argocd, tug := apply(plan, nil, nil)
	claims, err := VerifyToken(string(tug[CredDeployerToken]), argocd[KeyServerSecret])
	if err != nil {
		t.Fatalf("token does not verify with server.secretkey: %v", err)
	}
	if claims.Subject != "deployer:apiKey" || claims.Issuer != "argocd" {
		t.Errorf("claims sub=%q iss=%q, want deployer:apiKey / argocd", claims.Subject, claims.Issuer)
	}
	if claims.ExpiresAt != nil {
		t.Errorf("token expires at %v; Argo CD API keys made without --expires-in do not", claims.ExpiresAt)
	}
	var tokens []Token
	if err := json.Unmarshal(argocd[KeyDeployerTokens], &tokens); err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 1 || tokens[0].ID != claims.ID || tokens[0].IssuedAt != claims.IssuedAt.Unix() {
		t.Errorf("accounts.deployer.tokens = %s, want the token's jti %s and iat", argocd[KeyDeployerTokens], claims.ID)
	}
	if _, err := VerifyToken(string(tug[CredDeployerToken]), []byte("another key")); err == nil {
		t.Error("token verified with a different key")
	}
}

func TestCredentialsRepairInsteadOfRegenerate(t *testing.T) {
	plan, _ := PlanCredentials(nil, nil, Generator{Now: fixedNow})
	argocd, tug := apply(plan, nil, nil)

	// argocd-secret lost the hash and token list but kept its key (e.g.
	// someone deleted the keys): the same password and token come back.
	damaged := map[string][]byte{KeyServerSecret: argocd[KeyServerSecret]}
	fix, err := PlanCredentials(damaged, tug, Generator{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if fix.TugSecret != nil {
		t.Errorf("tug-credentials rewritten: %v", fix.Actions)
	}
	repaired, _ := apply(fix, damaged, tug)
	if ok, _ := password.VerifyPassword(string(tug[CredOperatorPassword]), string(repaired[KeyOperatorPassword])); !ok {
		t.Error("repaired hash does not match the kept password")
	}
	if string(repaired[KeyDeployerTokens]) != string(argocd[KeyDeployerTokens]) {
		t.Errorf("token list = %s, want the original %s", repaired[KeyDeployerTokens], argocd[KeyDeployerTokens])
	}

	// A new signing key invalidates the token: a new one is minted, the
	// password is left alone.
	rekeyed := map[string][]byte{}
	for k, v := range argocd {
		rekeyed[k] = v
	}
	rekeyed[KeyServerSecret] = []byte("rotated")
	fix, err = PlanCredentials(rekeyed, tug, Generator{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fix.ArgoCDSecret[KeyOperatorPassword]; ok {
		t.Error("password regenerated on key rotation")
	}
	if fix.TugSecret == nil || fix.TugSecret[CredDeployerToken] == string(tug[CredDeployerToken]) {
		t.Fatal("stale token kept")
	}
	if fix.TugSecret[CredOperatorPassword] != string(tug[CredOperatorPassword]) {
		t.Error("password changed on key rotation")
	}
	if _, err := VerifyToken(fix.TugSecret[CredDeployerToken], []byte("rotated")); err != nil {
		t.Errorf("new token does not verify with the new key: %v", err)
	}
}

func TestCredentialsRespectAPasswordChangedInArgoCD(t *testing.T) {
	plan, _ := PlanCredentials(nil, nil, Generator{Now: fixedNow})
	argocd, tug := apply(plan, nil, nil)
	h, _ := password.HashPassword("changed-by-a-human")
	argocd[KeyOperatorPassword] = []byte(h)
	fix, err := PlanCredentials(argocd, tug, Generator{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fix.ArgoCDSecret[KeyOperatorPassword]; ok {
		t.Error("overwrote a password set in Argo CD")
	}
	if fix.TugSecret == nil {
		t.Fatal("stale plaintext kept in tug-credentials")
	}
	if _, ok := fix.TugSecret[CredOperatorPassword]; ok {
		t.Error("stale plaintext kept in tug-credentials")
	}
}

func TestCredentialsKeepOtherDeployerTokens(t *testing.T) {
	other := `[{"id":"ci-token","iat":1700000000}]`
	plan, err := PlanCredentials(map[string][]byte{KeyServerSecret: []byte("k"), KeyDeployerTokens: []byte(other)}, nil, Generator{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	var tokens []Token
	_ = json.Unmarshal([]byte(plan.ArgoCDSecret[KeyDeployerTokens]), &tokens)
	if len(tokens) != 2 || tokens[0].ID != "ci-token" {
		t.Errorf("tokens = %s, want the existing ci-token kept plus ours", plan.ArgoCDSecret[KeyDeployerTokens])
	}
	if _, ok := plan.ArgoCDSecret[KeyServerSecret]; ok {
		t.Error("existing server.secretkey replaced")
	}
	_, err = PlanCredentials(map[string][]byte{KeyDeployerTokens: []byte("not json")}, nil, Generator{})
	if err == nil || !strings.Contains(err.Error(), KeyDeployerTokens) {
		t.Errorf("bad token list: err = %v, want one naming the key", err)
	}
}

func TestRenderCarriesTheHardening(t *testing.T) {
	objs, err := Render(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckHardening(objs); err != nil {
		t.Fatal(err)
	}
	var sawCRD, sawServer bool
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" && o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding" && o.GetNamespace() != Namespace {
			t.Errorf("%s/%s not in namespace argocd", o.GetKind(), o.GetName())
		}
		switch {
		case o.GetKind() == "CustomResourceDefinition" && o.GetName() == "applications.argoproj.io":
			sawCRD = true
		case o.GetKind() == "Deployment" && o.GetName() == "argocd-server":
			sawServer = true
		}
		if o.GetKind() == "ConfigMap" && o.GetName() == "argocd-cmd-params-cm" {
			if v, _, _ := unstructured.NestedString(o.Object, "data", "server.insecure"); v != "false" {
				t.Errorf("server.insecure = %q, want TLS on", v)
			}
		}
	}
	if !sawCRD || !sawServer {
		t.Errorf("render lacks the upstream install (Application CRD %v, argocd-server %v)", sawCRD, sawServer)
	}
}

func TestCheckHardeningNamesWhatIsMissing(t *testing.T) {
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "argocd-cm", "namespace": "argocd"},
		"data":     map[string]any{"accounts.operator": "login", "accounts.deployer": "login"},
	}}
	err := CheckHardening([]*unstructured.Unstructured{cm})
	if err == nil || !strings.Contains(err.Error(), "admin.enabled") || !strings.Contains(err.Error(), "apiKey") || strings.Contains(err.Error(), "operator must") {
		t.Errorf("err = %v", err)
	}
}

func TestRenderRootRetargetsTheRepoURL(t *testing.T) {
	const forge = "http://127.0.0.1:3000/tug/tug.git"
	objs, err := RenderRoot(repoRoot(t), forge)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, o := range objs {
		kinds[o.GetKind()+"/"+o.GetName()] = true
		switch o.GetKind() {
		case "AppProject":
			repos, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "sourceRepos")
			if len(repos) != 1 || repos[0] != forge {
				t.Errorf("sourceRepos = %v", repos)
			}
		case "Application":
			u, _, _ := unstructured.NestedString(o.Object, "spec", "source", "repoURL")
			if u != forge {
				t.Errorf("repoURL = %q", u)
			}
		}
	}
	if !kinds["AppProject/platform"] || !kinds["Application/root"] {
		t.Errorf("root.yaml objects = %v", kinds)
	}
	plain, _ := RenderRoot(repoRoot(t), "")
	for _, o := range plain {
		if u, ok, _ := unstructured.NestedString(o.Object, "spec", "source", "repoURL"); ok && u == forge {
			t.Error("empty override changed the URL")
		}
	}
}

func TestRetargetMultiSource(t *testing.T) {
	app := &unstructured.Unstructured{Object: map[string]any{
		"kind": "Application",
		"spec": map[string]any{"sources": []any{map[string]any{"repoURL": "a"}, map[string]any{"repoURL": "b"}}},
	}}
	if err := retarget(app, "x"); err != nil {
		t.Fatal(err)
	}
	srcs, _, _ := unstructured.NestedSlice(app.Object, "spec", "sources")
	for _, s := range srcs {
		if s.(map[string]any)["repoURL"] != "x" {
			t.Errorf("sources = %v", srcs)
		}
	}
}

// IsWorkload picks exactly the install's Deployments, StatefulSets and
// Jobs: what --skip-workloads (and the lab) leave out.
func TestIsWorkload(t *testing.T) {
	objs, err := Render(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	workloads := map[string]bool{}
	for _, o := range objs {
		if IsWorkload(o) {
			workloads[o.GetKind()+"/"+o.GetName()] = true
		}
	}
	for _, want := range []string{"Deployment/argocd-server", "Deployment/argocd-repo-server", "StatefulSet/argocd-application-controller", "Deployment/argocd-applicationset-controller"} {
		if !workloads[want] {
			t.Errorf("IsWorkload misses %s", want)
		}
	}
	for w := range workloads {
		if k := strings.SplitN(w, "/", 2)[0]; k != "Deployment" && k != "StatefulSet" && k != "Job" {
			t.Errorf("IsWorkload picked %s", w)
		}
	}
	if len(workloads) == len(objs) || len(workloads) == 0 {
		t.Errorf("IsWorkload picked %d of %d objects", len(workloads), len(objs))
	}
}

// root.yaml says directory: {recurse: false}; Argo CD's controller removes
// such an all-zero block from the live Application, so bootstrap must not
// apply it (or every re-run would report root as changed).
func TestRenderRootNormalizesZeroSourceBlocks(t *testing.T) {
	objs, err := RenderRoot(repoRoot(t), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "Application" {
			continue
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "source", "directory"); found {
			t.Errorf("Application %s keeps spec.source.directory, which Argo CD drops when all zero", o.GetName())
		}
		if p, _, _ := unstructured.NestedString(o.Object, "spec", "source", "path"); p == "" {
			t.Errorf("Application %s lost its source path", o.GetName())
		}
	}
	app := &unstructured.Unstructured{Object: map[string]any{
		"kind": "Application", "metadata": map[string]any{"name": "x"},
		"spec": map[string]any{"sources": []any{
			map[string]any{"repoURL": "r", "directory": map[string]any{"recurse": false, "include": "*.yaml"}},
			map[string]any{"repoURL": "r", "directory": map[string]any{"recurse": true}, "helm": map[string]any{}},
		}},
	}}
	if err := normalizeSources(app); err != nil {
		t.Fatal(err)
	}
	srcs, _, _ := unstructured.NestedSlice(app.Object, "spec", "sources")
	if d := srcs[0].(map[string]any)["directory"]; d == nil || len(d.(map[string]any)) != 1 {
		t.Errorf("sources[0].directory = %v, want only include", d)
	}
	if d := srcs[1].(map[string]any)["directory"]; d == nil {
		t.Errorf("sources[1].directory (recurse: true) was dropped")
	}
	if _, ok := srcs[1].(map[string]any)["helm"]; ok {
		t.Errorf("sources[1].helm (empty) was kept")
	}
}

// The forge webhook's secret is generated once into both Secrets; one set
// in argocd-secret by hand is kept and copied; a lost argocd-secret gets
// the copy back.
func TestCredentialsWebhookSecret(t *testing.T) {
	plan, err := PlanCredentials(nil, nil, Generator{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	argocd, tug := apply(plan, nil, nil)
	secret := string(argocd[KeyWebhookSecret])
	if len(secret) != 64 || string(tug[CredWebhookSecret]) != secret {
		t.Fatalf("argocd-secret %s = %d chars, tug-credentials %s differs: %v", KeyWebhookSecret, len(secret), CredWebhookSecret, string(tug[CredWebhookSecret]) != secret)
	}
	for _, a := range plan.Actions {
		if strings.Contains(a, secret) {
			t.Errorf("an action shows the secret: %s", a)
		}
	}

	argocd[KeyWebhookSecret] = []byte("set-by-hand")
	fix, err := PlanCredentials(argocd, tug, Generator{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fix.ArgoCDSecret[KeyWebhookSecret]; ok || fix.TugSecret[CredWebhookSecret] != "set-by-hand" {
		t.Errorf("a secret set in argocd-secret was not kept and copied: argocd %v, tug %q", fix.ArgoCDSecret, fix.TugSecret[CredWebhookSecret])
	}

	delete(argocd, KeyWebhookSecret)
	fix, err = PlanCredentials(argocd, tug, Generator{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if fix.ArgoCDSecret[KeyWebhookSecret] != secret || fix.TugSecret != nil {
		t.Errorf("a lost argocd-secret key was not restored from tug-credentials: %v", fix.Actions)
	}
}

// bootstrap tells how to point the forge at Argo CD, naming where the
// secret is, not the secret.
func TestWebhookHowToNamesKeysNotValues(t *testing.T) {
	var b strings.Builder
	printWebhookHowTo(&b)
	for _, want := range []string{"/api/webhook", "Gitea (or Gogs)", "push events", "{.data." + CredWebhookSecret + "}", KeyWebhookSecret} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the webhook how-to lacks %q:\n%s", want, b.String())
		}
	}
}
