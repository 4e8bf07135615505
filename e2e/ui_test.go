package e2e

// GITOPS-002 in a real browser: Argo CD's own web UI, built from the pinned
// release's source and served by the lab's argocd-server, driven by
// headless Chromium through the DevTools protocol (chromedp).
//
// The browser touches no trust store: --ignore-certificate-errors-spki-list
// names the public key of argocd-server's certificate, read from the lab's
// PKI folder (the lab CA issued it; the CA's key is listed too, for a
// server that sends the chain), so any other certificate error still fails
// the page. Chromium matches the keys of the chain the server sends, and
// argocd-server sends its certificate alone.
//
// When a test fails it writes a screenshot of what the browser showed to
// $TUG_E2E_ARTIFACTS (default: $TMPDIR/tug-e2e-ui) and logs its path.
// TUG_UPDATE_SCREENSHOT=1 regenerates the README's picture of the UI.

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tug-gitops/tug/internal/bootstrap"
)

// readmeScreenshot is the README's picture of the lab's UI.
const readmeScreenshot = "docs/argocd-ui.png"

// inCI is true where the browser tests must run rather than skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// skipOrFail skips a browser test on a developer's machine that cannot run
// it, and fails it in CI, where a skip would hide that nothing was tested.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s (CI=true: the browser tests must run)", msg)
	}
	t.Skip(msg)
}

func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TUG_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	skipOrFail(t, "no chromium on PATH (Debian: apt-get install chromium; or set TUG_CHROMIUM): browser tests not run")
	return ""
}

// uiURL is the lab's Argo CD web UI, ending in "/".
func uiURL(t testing.TB) string {
	t.Helper()
	u := env.status.Endpoints["argocd-ui"]
	if u == "" {
		skipOrFail(t, "the lab serves no Argo CD web UI: "+strings.Join(env.status.Notices, "; "))
	}
	return u
}

// labSPKIs returns the base64 SHA-256 hashes of the lab CA's and
// argocd-server's public keys, the form Chromium's
// --ignore-certificate-errors-spki-list takes.
func labSPKIs(t testing.TB) string {
	t.Helper()
	var hashes []string
	for _, name := range []string{"ca.crt", "argocd-server.crt"} {
		data, err := os.ReadFile(filepath.Join(env.layout.PKI(), name))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			t.Fatalf("%s: no PEM certificate", name)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		hashes = append(hashes, base64.StdEncoding.EncodeToString(sum[:]))
	}
	return strings.Join(hashes, ",")
}

// newBrowser starts a headless Chromium of its own (fresh profile: no
// cookie, no stored preference) for one test, stopped at its end. If the
// test fails, a screenshot of the page is written first.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	uiURL(t) // skips (or fails in CI) first when there is no UI
	exe := chromiumPath(t)
	// A fresh profile, removed after the browser's cleanup (registered
	// later, so run earlier) has stopped every Chromium process.
	profile := t.TempDir()
	// Chromium makes folders of its own in TMPDIR (org.chromium.Chromium.*,
	// holding its singleton socket) and removes them only when it exits
	// cleanly, which a killed browser does not: they go in the test's.
	tmp := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Env("TMPDIR="+tmp),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-crash-reporter", true),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("ignore-certificate-errors-spki-list", labSPKIs(t)),
	)
	if os.Geteuid() == 0 {
		// Chromium's sandbox refuses to run as root (CI containers).
		opts = append(opts, chromedp.NoSandbox)
	}
	// Chromium runs in a process group of its own: its zygotes, GPU,
	// network and renderer processes outlive the browser process by a
	// moment and write into the profile, so the test stops them all.
	opts = append(opts, chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	pgid := 0
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if pgid > 0 {
			stopProcessGroup(t, pgid)
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	c := chromedp.FromContext(ctx)
	if c == nil || c.Browser == nil || c.Browser.Process() == nil {
		t.Fatalf("%s started, but chromedp reports no browser process to stop at the end", exe)
	}
	pgid = c.Browser.Process().Pid
	t.Cleanup(func() {
		if t.Failed() {
			screenshotOnFailure(t, ctx)
		}
	})
	return ctx
}

// stopProcessGroup kills what is left of the browser's process group and
// waits until none of it remains.
func stopProcessGroup(t testing.TB, pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			t.Errorf("Chromium's process group %d still has processes 10 s after SIGKILL", pgid)
			return
		}
		time.Sleep(20 * time.Millisecond) // poll interval while the kernel reaps them
	}
}

func screenshotOnFailure(t testing.TB, ctx context.Context) {
	dir := os.Getenv("TUG_E2E_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tug-e2e-ui")
	}
	var png []byte
	var url string
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Run(sctx, chromedp.Location(&url), chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	path := filepath.Join(dir, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")+".png")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	t.Logf("the browser was at %s; screenshot: %s", url, path)
}

// run runs browser actions with a deadline, so a page that never shows
// what is waited for fails the test instead of hanging it.
func run(ctx context.Context, timeout time.Duration, actions ...chromedp.Action) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return chromedp.Run(ctx, actions...)
}

// submitLogin fills Argo CD's login form and submits it.
func submitLogin(ctx context.Context, base, user, password string) error {
	return run(ctx, 60*time.Second,
		chromedp.Navigate(base+"login"),
		chromedp.WaitVisible(`input[name="username"]`),
		chromedp.SendKeys(`input[name="username"]`, user),
		chromedp.SendKeys(`input[name="password"]`, password),
		chromedp.Click(`button[type="submit"]`),
	)
}

// loginError waits for the login form's error message and returns it.
func loginError(ctx context.Context) (string, error) {
	var msg string
	err := run(ctx, 30*time.Second,
		chromedp.WaitVisible(`.login .argo-form-row__error-msg`),
		chromedp.Text(`.login .argo-form-row__error-msg`, &msg),
	)
	return strings.TrimSpace(msg), err
}

// appTile is one Application as the Applications page shows it.
type appTile struct {
	Name   string `json:"name"`
	Status string `json:"status"` // e.g. "Healthy Synced"
}

const tilesJS = `Array.from(document.querySelectorAll('.applications-tiles__item')).map(el => ({
	name: (el.querySelector('.applications-list__title') || {textContent: ''}).textContent.trim(),
	status: (el.querySelector('[qe-id="applications-tiles-health-status"]') || {textContent: ''}).textContent.replace(/\s+/g, ' ').trim(),
}))`

// poll calls cond every 250 ms until it returns nil or timeout passes,
// and then returns cond's last error.
func poll(ctx context.Context, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitTiles polls the Applications page until want (names, each Healthy
// and Synced) are listed and nothing else, or the deadline passes.
func waitTiles(ctx context.Context, timeout time.Duration, want []string) ([]appTile, error) {
	var tiles []appTile
	err := poll(ctx, timeout, func() error {
		tiles = nil
		if err := run(ctx, 10*time.Second, chromedp.Evaluate(tilesJS, &tiles)); err != nil {
			return err
		}
		return tilesMatch(tiles, want)
	})
	return tiles, err
}

func tilesMatch(tiles []appTile, want []string) error {
	var names []string
	for _, tile := range tiles {
		name := tile.Name[strings.LastIndex(tile.Name, "/")+1:] // "argocd/x" when apps in any namespace are on
		names = append(names, name)
		if !slices.Contains(want, name) {
			return fmt.Errorf("unexpected application %q listed (want only %v)", tile.Name, want)
		}
		if !strings.Contains(tile.Status, "Healthy") || !strings.Contains(tile.Status, "Synced") {
			return fmt.Errorf("%s shows %q, want Healthy and Synced", name, tile.Status)
		}
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			return fmt.Errorf("%s not listed (listed: %v)", w, names)
		}
	}
	return nil
}

// credential reads one key of the Secret bootstrap writes the lab's
// credentials to.
func credential(tb testing.TB, key string) string {
	tb.Helper()
	cs, err := kubernetes.NewForConfig(env.cfg)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := cs.CoreV1().Secrets(bootstrap.Namespace).Get(context.Background(), bootstrap.CredentialsSecret, metav1.GetOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return string(s.Data[key])
}

func location(ctx context.Context) string {
	var u string
	_ = run(ctx, 5*time.Second, chromedp.Location(&u))
	return u
}

// Anonymous users get the login page, and nothing else: asking for the
// Applications page lands on the login form with no application shown.
func TestUIAnonymousGetsLoginPageOnly(t *testing.T) {
	ctx := newBrowser(t)
	base := uiURL(t)
	if err := run(ctx, 60*time.Second, chromedp.Navigate(base+"applications"), chromedp.WaitVisible(`input[name="username"]`)); err != nil {
		t.Fatalf("the login form did not render for an anonymous visit of /applications (at %s): %v", location(ctx), err)
	}
	if u := location(ctx); !strings.Contains(u, "/login") {
		t.Fatalf("anonymous visit of /applications stayed at %s, want the login page", u)
	}
	var title string
	var tiles []appTile
	if err := run(ctx, 10*time.Second, chromedp.Title(&title), chromedp.Evaluate(tilesJS, &tiles)); err != nil {
		t.Fatal(err)
	}
	if len(tiles) != 0 {
		t.Fatalf("an anonymous visitor sees applications: %+v", tiles)
	}
	t.Logf("anonymous → %s (title %q)", location(ctx), title)
}

// A wrong password shows Argo CD's own error and stays on the login page.
func TestUIWrongPasswordShowsError(t *testing.T) {
	ctx := newBrowser(t)
	base := uiURL(t)
	// Reset operator's failure count afterwards (a success does), so this
	// failure never adds up to a lockout with another test's.
	t.Cleanup(func() {
		if _, err := argoLogin(t, "operator", operatorPassword(t)); err != nil {
			t.Errorf("operator cannot log in after the wrong-password test: %v", err)
		}
	})
	if err := submitLogin(ctx, base, "operator", "not-the-password"); err != nil {
		t.Fatal(err)
	}
	msg, err := loginError(ctx)
	if err != nil {
		t.Fatalf("no error shown for a wrong password: %v", err)
	}
	if msg != "Invalid username or password" {
		t.Fatalf("error shown: %q, want Argo CD's %q", msg, "Invalid username or password")
	}
	if u := location(ctx); !strings.Contains(u, "/login") {
		t.Fatalf("a wrong password went on to %s", u)
	}
}

// The built-in admin is disabled: the UI refuses it like any wrong login.
func TestUIAdminRefused(t *testing.T) {
	ctx := newBrowser(t)
	if err := submitLogin(ctx, uiURL(t), "admin", operatorPassword(t)); err != nil {
		t.Fatal(err)
	}
	msg, err := loginError(ctx)
	if err != nil {
		t.Fatalf("admin: no error shown: %v", err)
	}
	if msg != "Invalid username or password" {
		t.Fatalf("admin: %q", msg)
	}
	if u := location(ctx); !strings.Contains(u, "/login") {
		t.Fatalf("admin got to %s", u)
	}
}

// operator logs in and lands on the Applications page, which lists root
// and the four product apps, all Synced and Healthy.
func TestUIOperatorSeesApplications(t *testing.T) {
	ctx := newBrowser(t)
	base := uiURL(t)
	if err := submitLogin(ctx, base, "operator", operatorPassword(t)); err != nil {
		t.Fatal(err)
	}
	want := append([]string{"root"}, productApps...)
	tiles, err := waitTiles(ctx, 90*time.Second, want)
	if err != nil {
		t.Fatalf("Applications page (at %s): %v; shown: %+v", location(ctx), err, tiles)
	}
	if u := location(ctx); !strings.HasSuffix(strings.SplitN(u, "?", 2)[0], "/applications") {
		t.Errorf("after login the browser is at %s, want the Applications page", u)
	}
	t.Logf("Applications page: %+v", tiles)
	var version string
	if err := run(ctx, 10*time.Second, chromedp.Evaluate(`fetch('/api/version').then(r => r.json()).then(v => v.Version)`, &version, func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) })); err != nil {
		t.Fatal(err)
	}
	if version != "v3.2.11" {
		t.Errorf("argocd-server reports version %q, want v3.2.11 (a release-stamped build)", version)
	}
	if os.Getenv("TUG_UPDATE_SCREENSHOT") != "" {
		var png []byte
		if err := run(ctx, 20*time.Second, chromedp.CaptureScreenshot(&png)); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(env.repo, readmeScreenshot)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(png))
	}
}

// The details page of backend-dev draws its resource tree: the app, its
// Deployment and what hangs below it.
func TestUIAppDetailsResourceTree(t *testing.T) {
	ctx := newBrowser(t)
	base := uiURL(t)
	if err := submitLogin(ctx, base, "operator", operatorPassword(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := waitTiles(ctx, 90*time.Second, append([]string{"root"}, productApps...)); err != nil {
		t.Fatalf("Applications page: %v", err)
	}
	nl := watchNetwork(ctx)
	if err := run(ctx, 10*time.Second, network.Enable()); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	// The test waits for what a person waits for, the tree, not for the
	// page's load event: the page's two event streams each hold two of the
	// six HTTP/1.1 connections a browser opens to a host (argocd-server
	// offers browsers no HTTP/2), the app list's stream a fifth, and the
	// resource icons the tree draws, which the load event waits for, queue
	// on the last one behind the other requests, the commit's metadata
	// from the repo-server among them. CI once saw the load event not come
	// within 60 s, with the icons, the metadata and the sync windows still
	// waiting.
	if err := run(ctx, 60*time.Second, startNavigation(base+"applications/argocd/backend-dev")); err != nil {
		t.Fatalf("opening backend-dev's details page (at %s): %v\n%s", location(ctx), err, nl)
	}
	var kinds []string
	// The UI's scripts (megabytes) are fetched and run first: 120 s, since
	// a loaded CI host took over 10 s for the login page's.
	err := poll(ctx, 120*time.Second, func() error {
		kinds = nil
		if err := run(ctx, 10*time.Second, chromedp.Evaluate(`Array.from(document.querySelectorAll('.application-resource-tree__node-kind')).map(e => e.textContent.trim())`, &kinds)); err != nil {
			return err
		}
		if !slices.Contains(kinds, "deploy") || len(kinds) < 3 {
			return fmt.Errorf("node kinds shown: %v, want a deploy among at least 3", kinds)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("backend-dev's resource tree: %v\n%s", err, nl)
	}
	t.Logf("resource tree of backend-dev drawn %s after navigating: %v\n%s", time.Since(began).Round(time.Millisecond), kinds, nl)
}

// startNavigation navigates the tab to url and returns once the browser
// has begun loading it, where chromedp.Navigate waits for its load event.
func startNavigation(url string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		_, _, errText, _, err := page.Navigate(url).Do(ctx)
		if err == nil && errText != "" {
			err = fmt.Errorf("navigating to %s: %s", url, errText)
		}
		return err
	})
}

// netLog records the page's requests: which are still open, and the
// protocols the responses came over (HTTP/1.1 allows a browser six
// connections per host, and each of Argo CD's watch streams holds two).
type netLog struct {
	mu        sync.Mutex
	pending   map[network.RequestID]string
	protocols map[string]int
}

func watchNetwork(ctx context.Context) *netLog {
	nl := &netLog{pending: map[network.RequestID]string{}, protocols: map[string]int{}}
	chromedp.ListenTarget(ctx, func(ev any) {
		nl.mu.Lock()
		defer nl.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			nl.pending[e.RequestID] = e.Request.URL
		case *network.EventResponseReceived:
			nl.protocols[e.Response.Protocol]++
		case *network.EventLoadingFinished:
			delete(nl.pending, e.RequestID)
		case *network.EventLoadingFailed:
			delete(nl.pending, e.RequestID)
		}
	})
	return nl
}

func (nl *netLog) String() string {
	nl.mu.Lock()
	defer nl.mu.Unlock()
	var open []string
	for _, u := range nl.pending {
		open = append(open, u)
	}
	slices.Sort(open)
	return fmt.Sprintf("responses by protocol: %v; requests still open (%d):\n  %s", nl.protocols, len(open), strings.Join(open, "\n  "))
}

// deployer has API tokens only (no password). With its token in the
// browser's session cookie, the UI shows what its RBAC allows: the shop
// project's four apps, not the platform's root.
func TestUIDeployerSeesOnlyShopApps(t *testing.T) {
	ctx := newBrowser(t)
	base := uiURL(t)
	tok := deployerToken(t)
	err := run(ctx, 30*time.Second,
		chromedp.ActionFunc(func(ctx context.Context) error {
			return network.SetCookie("argocd.token", tok).WithURL(base).WithPath("/").WithSecure(true).WithHTTPOnly(true).Do(ctx)
		}),
		chromedp.Navigate(base+"applications"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tiles, err := waitTiles(ctx, 90*time.Second, productApps)
	if err != nil {
		t.Fatalf("deployer's Applications page (at %s): %v; shown: %+v", location(ctx), err, tiles)
	}
	t.Logf("deployer sees %+v", tiles)
}

// Five wrong passwords typed into the login form lock the account: the
// right password is then refused too (the API-level test is
// TestSecurityLoginLockout). argocd-server keeps the count in memory; it
// is restarted afterwards so later tests can log in.
func TestUILoginLockout(t *testing.T) {
	ctx := newBrowser(t)
	base := uiURL(t)
	password := operatorPassword(t)
	t.Cleanup(func() { restartArgoCDServer(t) })
	// A success first clears any earlier failure, so the count is ours.
	if _, err := argoLogin(t, "operator", password); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if err := submitLogin(ctx, base, "operator", fmt.Sprintf("wrong-%d", i)); err != nil {
			t.Fatal(err)
		}
		if msg, err := loginError(ctx); err != nil || msg != "Invalid username or password" {
			t.Fatalf("wrong password %d: %q, %v", i, msg, err)
		}
	}
	if err := submitLogin(ctx, base, "operator", password); err != nil {
		t.Fatal(err)
	}
	msg, err := loginError(ctx)
	if err != nil {
		t.Fatalf("the right password after 5 wrong ones: no error shown (at %s): %v", location(ctx), err)
	}
	if u := location(ctx); !strings.Contains(u, "/login") {
		t.Fatalf("the right password after 5 wrong ones got to %s: no lockout", u)
	}
	t.Logf("locked out in the UI: %q", msg)
}

// BenchmarkUILoginToApplications: from the login form to the Applications
// page showing root and the four product apps Synced and Healthy, in one
// browser, its cookies cleared between iterations.
func BenchmarkUILoginToApplications(b *testing.B) {
	ctx := newBrowser(b)
	base := uiURL(b)
	password := credential(b, bootstrap.CredOperatorPassword)
	want := append([]string{"root"}, productApps...)
	for b.Loop() {
		b.StopTimer()
		if err := run(ctx, 30*time.Second, network.ClearBrowserCookies(), chromedp.Navigate(base+"login"), chromedp.WaitVisible(`input[name="username"]`)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := run(ctx, 30*time.Second,
			chromedp.SendKeys(`input[name="username"]`, "operator"),
			chromedp.SendKeys(`input[name="password"]`, password),
			chromedp.Click(`button[type="submit"]`),
		); err != nil {
			b.Fatal(err)
		}
		if _, err := waitTiles(ctx, 60*time.Second, want); err != nil {
			b.Fatal(err)
		}
	}
}
