package bootstrap

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/tug-gitops/tug/internal/kube"
)

// Secret names.
const (
	ArgoCDSecret       = "argocd-secret"
	InitialAdminSecret = "argocd-initial-admin-secret"
	CredentialsSecret  = "tug-credentials"
)

// credentialsManager owns the credential fields. It differs from the
// manager of the install ("tug") so re-applying the install, whose
// argocd-secret has no data, never removes them.
const credentialsManager = "tug-bootstrap"

// Options configure Run.
type Options struct {
	RESTConfig *rest.Config
	// RepoRoot is the GitOps repository's working tree (holds infra/).
	RepoRoot string
	// DryRun asks the API server to check every write without persisting.
	DryRun bool
	// ShowCredentials prints the operator password and deployer token.
	ShowCredentials bool
	// RepoURL, if set, replaces the Git URL in the root Application and the
	// platform AppProject (the lab passes its forge's URL). Empty keeps the
	// URL a live root Application already tracks, else root.yaml's.
	RepoURL string
	// Lab names the tug lab being bootstrapped; the argocd Namespace then
	// carries LabAnnotation, so a later `tug bootstrap` knows the cluster.
	Lab string
	// Exclude drops rendered install objects (the lab runs Argo CD's
	// workloads as processes, so it excludes their Deployments).
	Exclude func(*unstructured.Unstructured) bool
	// Workloads applies Argo CD's workloads even on a lab cluster, where
	// they are skipped by default (see LabAnnotation).
	Workloads bool
	// Out receives the plan/progress (nil: discarded).
	Out io.Writer
	// Generator supplies randomness and time (zero value: crypto/rand, now).
	Generator Generator
	// Install, if set, is infra/argocd already rendered with Render (the lab
	// renders it while the API server starts; a build takes ~1 s).
	Install []*unstructured.Unstructured
	// DeferRootApplication applies root.yaml's AppProject but not its
	// Application; the caller applies it with ApplyRoot once the application
	// controller runs (the lab: a controller that starts with the project
	// already listed never fails the root's first sync on "project does not
	// exist" and waits out a retry backoff).
	DeferRootApplication bool
}

// Report is what Run did or, on a dry run, would do.
type Report struct {
	DryRun bool
	// RepoURL is the Git URL the root Application and platform project
	// point at.
	RepoURL string
	// Lab is the tug lab this cluster is ("" when it is not one).
	Lab     string `json:",omitempty"`
	Install []kube.Result
	Root    []kube.Result
	// InitialAdminDeleted: argocd-initial-admin-secret existed and was deleted.
	InitialAdminDeleted bool
	// Credentials lists credential changes (never values).
	Credentials []string
	// Digest identifies the objects applied (see Digest), so a caller can
	// tell later whether a run would apply the same again.
	Digest string `json:"-"`
}

// Changed reports whether the run changed (would change) anything.
func (r *Report) Changed() bool {
	for _, res := range append(append([]kube.Result{}, r.Install...), r.Root...) {
		if res.Action != kube.Unchanged {
			return true
		}
	}
	return r.InitialAdminDeleted || len(r.Credentials) > 0
}

// Run installs Argo CD from infra/argocd, secures its access, then applies
// infra/gitops/root.yaml. Every step is idempotent: on a bootstrapped
// cluster it changes nothing and says so.
func Run(ctx context.Context, opts Options) (*Report, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	fileRoot, err := RenderRoot(opts.RepoRoot, "")
	if err != nil {
		return nil, err
	}
	c, err := kube.NewClient(opts.RESTConfig)
	if err != nil {
		return nil, err
	}
	l, err := readLive(ctx, c, fileRoot)
	if err != nil {
		return nil, err
	}
	fileURL := sourceRepoURL(rootApplication(fileRoot))
	adoptLive(&opts, l, fileURL, out)
	objs, root, err := Objects(opts)
	if err != nil {
		return nil, err
	}
	rep := &Report{DryRun: opts.DryRun, RepoURL: cmp.Or(opts.RepoURL, fileURL), Lab: opts.Lab}
	if rep.Digest, err = Digest(objs, root); err != nil {
		return nil, err
	}

	fmt.Fprintf(out, "Argo CD install (%s, %d objects):\n", InstallDir, len(objs))
	rep.Install, err = c.Apply(ctx, objs, kube.ApplyOptions{DryRun: opts.DryRun})
	printResults(out, rep.Install, opts.DryRun)
	if err != nil {
		return rep, fmt.Errorf("apply %s: %w", InstallDir, err)
	}

	fmt.Fprintln(out, "Access:")
	if rep.InitialAdminDeleted, err = deleteInitialAdmin(ctx, c, opts.DryRun); err != nil {
		return rep, err
	}
	if rep.InitialAdminDeleted {
		fmt.Fprintf(out, "  %s Secret/%s/%s (admin is disabled)\n", verb("delete", opts.DryRun), Namespace, InitialAdminSecret)
	}
	creds, err := secureCredentials(ctx, c, opts)
	if err != nil {
		return rep, err
	}
	rep.Credentials = creds.Actions
	for _, a := range creds.Actions {
		fmt.Fprintf(out, "  %s%s\n", map[bool]string{true: "would ", false: ""}[opts.DryRun], a)
	}
	if !rep.InitialAdminDeleted && len(creds.Actions) == 0 {
		fmt.Fprintln(out, "  unchanged (admin disabled, operator password and deployer token in place)")
	}

	fmt.Fprintf(out, "Root (%s):\n", RootFile)
	ao := kube.ApplyOptions{DryRun: opts.DryRun}
	if opts.DryRun {
		crds, _ := kube.SplitCRDs(objs)
		ao.PendingKinds = kube.CRDKinds(crds)
	}
	if opts.DeferRootApplication {
		root = projectsOnly(root)
	}
	rep.Root, err = applyProjectsFirst(ctx, c, root, ao)
	printResults(out, rep.Root, opts.DryRun)
	if err != nil {
		return rep, fmt.Errorf("apply %s: %w", RootFile, err)
	}

	if opts.ShowCredentials && !opts.DryRun {
		if err := printCredentials(ctx, c, out); err != nil {
			return rep, err
		}
	} else if !opts.DryRun {
		fmt.Fprintf(out, "Credentials are in Secret/%s/%s (keys %s, %s); rerun with --show-credentials to print them.\n",
			Namespace, CredentialsSecret, CredOperatorPassword, CredDeployerToken)
	}
	if !opts.DryRun && opts.Lab == "" {
		printWebhookHowTo(out)
	}
	return rep, nil
}

// printWebhookHowTo says how to point the forge's push webhook at Argo CD
// (the lab does it itself); the secret is read from the cluster, never
// printed.
func printWebhookHowTo(out io.Writer) {
	fmt.Fprintf(out, `Forge webhook (Argo CD then syncs a merge at once instead of at its next poll):
  in the repository's settings add a Gitea (or Gogs) webhook for push events:
    URL           https://<argocd-server address>/api/webhook
    content type  application/json
    secret        kubectl -n %s get secret %s -o jsonpath='{.data.%s}' | base64 -d
  (argocd-secret key %s holds the same value; see docs/promotion.md)
`, Namespace, CredentialsSecret, CredWebhookSecret, KeyWebhookSecret)
}

// CheckHardening refuses an install whose argocd-cm would leave the built-in
// admin on or lacks the operator/deployer accounts the credentials are for.
func CheckHardening(objs []*unstructured.Unstructured) error {
	data, found := argocdCM(objs)
	if !found {
		return fmt.Errorf("%s renders no ConfigMap argocd-cm: is it the Argo CD install?", InstallDir)
	}
	var problems []string
	if data["admin.enabled"] != "false" {
		problems = append(problems, `admin.enabled must be "false" (the built-in admin stays off)`)
	}
	if !hasCapability(data["accounts."+OperatorAccount], "login") {
		problems = append(problems, "accounts.operator must include the login capability")
	}
	if !hasCapability(data["accounts."+DeployerAccount], "apiKey") {
		problems = append(problems, "accounts.deployer must include the apiKey capability")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s/patches/argocd-cm.yaml: %s", InstallDir, strings.Join(problems, "; "))
	}
	return nil
}

func hasCapability(list, capability string) bool {
	for _, c := range strings.Split(list, ",") {
		if strings.TrimSpace(c) == capability {
			return true
		}
	}
	return false
}

func deleteInitialAdmin(ctx context.Context, c *kube.Client, dryRun bool) (bool, error) {
	do := metav1.DeleteOptions{}
	if dryRun {
		do.DryRun = []string{metav1.DryRunAll}
	}
	err := c.Typed.CoreV1().Secrets(Namespace).Delete(ctx, InitialAdminSecret, do)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("delete Secret/%s/%s: %w", Namespace, InitialAdminSecret, err)
	}
	return true, nil
}

// secureCredentials plans credentials from the live Secrets and writes the
// plan (unless dry-running). argocd-secret is written with its
// resourceVersion as a precondition (argocd-server may generate
// server.secretkey at the same moment); on a conflict it plans again.
func secureCredentials(ctx context.Context, c *kube.Client, opts Options) (CredentialPlan, error) {
	var plan CredentialPlan
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		argocd, rv, err := secretData(ctx, c, ArgoCDSecret)
		if err != nil {
			return err
		}
		tug, _, err := secretData(ctx, c, CredentialsSecret)
		if err != nil {
			return err
		}
		plan, err = PlanCredentials(argocd, tug, opts.Generator)
		if err != nil || opts.DryRun || !plan.Changed() {
			return err
		}
		// Plaintext first: if writing Argo CD's side then fails, the next
		// run finds the plaintext and repairs the hash instead of minting
		// new credentials.
		if plan.TugSecret != nil {
			if err := applyCredentialsSecret(ctx, c, plan.TugSecret); err != nil {
				return err
			}
		}
		if len(plan.ArgoCDSecret) > 0 {
			return mergeSecretData(ctx, c, ArgoCDSecret, rv, plan.ArgoCDSecret)
		}
		return nil
	})
	return plan, err
}

// secretData returns a Secret's data and resourceVersion ("" if absent).
func secretData(ctx context.Context, c *kube.Client, name string) (map[string][]byte, string, error) {
	s, err := c.Typed.CoreV1().Secrets(Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return map[string][]byte{}, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read Secret/%s/%s: %w", Namespace, name, err)
	}
	return s.Data, s.ResourceVersion, nil
}

// mergeSecretData sets keys in a Secret with a merge patch, so keys other
// writers own (argocd-server's TLS cert, tokens added later) are kept. rv
// is the version the plan was made from ("": the Secret did not exist).
func mergeSecretData(ctx context.Context, c *kube.Client, name, rv string, kv map[string]string) error {
	secrets := c.Typed.CoreV1().Secrets(Namespace)
	if rv == "" {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace}, StringData: kv}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: credentialsManager}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("secrets"), name, err) // created meanwhile: plan again
			}
			return fmt.Errorf("create Secret/%s/%s: %w", Namespace, name, err)
		}
		return nil
	}
	data := map[string]string{}
	for k, v := range kv {
		data[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": rv}, "data": data})
	if _, err := secrets.Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: credentialsManager}); err != nil {
		if apierrors.IsConflict(err) {
			return err // RetryOnConflict plans again
		}
		return fmt.Errorf("update Secret/%s/%s: %w", Namespace, name, err)
	}
	return nil
}

// applyCredentialsSecret server-side applies tug-credentials with exactly kv.
func applyCredentialsSecret(ctx context.Context, c *kube.Client, kv map[string]string) error {
	data := map[string]any{}
	for k, v := range kv {
		data[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	s := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name":      CredentialsSecret,
			"namespace": Namespace,
			"labels":    map[string]any{"app.kubernetes.io/managed-by": "tug"},
			"annotations": map[string]any{
				"tug-gitops.github.io/description": "Argo CD credentials generated by tug bootstrap: the operator account's password and the deployer account's API token.",
			},
		},
		"type": "Opaque",
		"data": data,
	}}
	_, err := c.Apply(ctx, []*unstructured.Unstructured{s}, kube.ApplyOptions{FieldManager: credentialsManager, Force: true})
	return err
}

func printCredentials(ctx context.Context, c *kube.Client, out io.Writer) error {
	data, _, err := secretData(ctx, c, CredentialsSecret)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Credentials (Secret/%s/%s):\n", Namespace, CredentialsSecret)
	for _, k := range []string{CredOperatorPassword, CredDeployerToken} {
		v, ok := data[k]
		if !ok {
			v = []byte("(not managed by tug)")
		}
		fmt.Fprintf(out, "  %s: %s\n", k, v)
	}
	return nil
}

// verb words an action for output: past tense when done, "would …" on a
// dry run.
func verb(v string, dryRun bool) string {
	if !dryRun {
		return v
	}
	switch v {
	case string(kube.Created):
		return "would create"
	case string(kube.Configured):
		return "would change"
	}
	return "would " + v
}

// printResults shows every change and a count of unchanged objects.
func printResults(out io.Writer, results []kube.Result, dryRun bool) {
	counts := map[kube.Action]int{}
	for _, r := range results {
		counts[r.Action]++
		if r.Action == kube.Unchanged {
			continue
		}
		line := fmt.Sprintf("  %s %s", verb(string(r.Action), dryRun), r.Ref)
		if r.Action == kube.Pending {
			line = fmt.Sprintf("  would create %s (its CRD is created first; not checked by the server)", r.Ref)
		}
		if len(r.Changes) > 0 {
			line += " (" + strings.Join(limit(r.Changes, 6), ", ") + ")"
		}
		fmt.Fprintln(out, line)
	}
	var parts []string
	for a, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, strings.SplitN(string(a), " ", 2)[0]))
	}
	sort.Strings(parts)
	if len(parts) > 0 {
		fmt.Fprintf(out, "  = %s\n", strings.Join(parts, ", "))
	}
}

func limit(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string{}, s[:n]...), fmt.Sprintf("… %d more", len(s)-n))
}

// ApplyRoot applies infra/gitops/root.yaml (repoURL, if set, replacing its
// Git URL), AppProjects before Applications.
func ApplyRoot(ctx context.Context, cfg *rest.Config, repoRoot, repoURL string) ([]kube.Result, error) {
	root, err := RenderRoot(repoRoot, repoURL)
	if err != nil {
		return nil, err
	}
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return applyProjectsFirst(ctx, c, root, kube.ApplyOptions{})
}

// applyProjectsFirst applies AppProjects, then the rest: an Application
// created before its project is rejected by a running controller with
// InvalidSpecError, and its sync retried only after a backoff.
func applyProjectsFirst(ctx context.Context, c *kube.Client, objs []*unstructured.Unstructured, ao kube.ApplyOptions) ([]kube.Result, error) {
	projects := projectsOnly(objs)
	var rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() != "AppProject" {
			rest = append(rest, o)
		}
	}
	results, err := c.Apply(ctx, projects, ao)
	if err != nil || len(rest) == 0 {
		return results, err
	}
	more, err := c.Apply(ctx, rest, ao)
	return append(results, more...), err
}

func projectsOnly(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "AppProject" {
			out = append(out, o)
		}
	}
	return out
}
