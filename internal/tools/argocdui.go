package tools

// Argo CD's web UI is not in its Go module as built files: the module holds
// the UI's source (ui/) and an empty ui/dist/app that argocd-server embeds.
// Upstream's image builds the UI with Node and yarn, then compiles the Go
// binary with the built files in place. EnsureArgoCDUI does the same, once,
// and caches the binary beside the others; the API-only argocd stays the
// fallback when the UI cannot be built here.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tug-gitops/tug/internal/fsutil"
	"github.com/tug-gitops/tug/internal/procgroup"
)

// The inputs of the UI build. Upstream's ui/yarn.lock pins argo-ui, its one
// git dependency, at argoUICommit; no registry serves that source, so it
// comes from GitHub or, where GitHub is out of reach, from a vendored
// `git archive` of that commit checked against argoUISHA256.
const (
	argoCDModule   = "github.com/argoproj/argo-cd/v3"
	yarnVersion    = "1.22.22"
	argoUIGitURL   = "https://github.com/argoproj/argo-ui.git"
	argoUICommit   = "5cf36101733ce43eed57242a12389f2a7e40bd2b"
	argoUITarball  = "argo-ui-5cf36101.tar.gz"
	argoUISHA256   = "5c7fbe122a1589dbb7a4a726cd4dda8a496387e97af5217b62764f2c6726490e"
	uiBuildVersion = "1" // bump when the steps below change what they produce
)

// ErrUIUnavailable wraps every reason the UI could not be built; the lab
// then runs the API-only argocd.
var ErrUIUnavailable = errors.New("argo cd web UI not built")

// UIError says why the UI could not be built and how to fix it.
type UIError struct {
	Reason string
	Fix    string
}

func (e *UIError) Error() string {
	return fmt.Sprintf("%v: %s (fix: %s)", ErrUIUnavailable, e.Reason, e.Fix)
}

func (e *UIError) Unwrap() error { return ErrUIUnavailable }

// ArgoCDUIPath returns where the argocd binary with the web UI is cached,
// whether or not it exists yet.
func (b *Builder) ArgoCDUIPath() (string, error) {
	key, err := b.uiKey()
	if err != nil {
		return "", err
	}
	return filepath.Join(b.cacheDir(), "argocd-ui-"+key, "argocd"), nil
}

// EnsureArgoCDUI returns the path of an argocd binary that serves Argo CD's
// web UI, building it first if it is not cached (Node, npm and the npm
// registry are needed then; a *UIError says what is missing).
func (b *Builder) EnsureArgoCDUI(ctx context.Context) (string, error) {
	path, err := b.ArgoCDUIPath()
	if err != nil {
		return "", err
	}
	return b.ensureAt(ctx, path, func(ctx context.Context) error { return b.buildArgoCDUI(ctx, path) })
}

func (b *Builder) cacheDir() string {
	if b.CacheDir != "" {
		return b.CacheDir
	}
	return DefaultCacheDir()
}

// uiKey extends the key of argocd's module and package with the UI's
// inputs: the pinned yarn, argo-ui's commit, the stamping and the Node
// major version (webpack's output depends on it). How the API-only
// argocd is built is left out: the UI binary's content does not depend on
// it.
func (b *Builder) uiKey() (string, error) {
	r := recipes[ArgoCD]
	key, err := b.key(recipe{module: r.module, pkg: r.pkg})
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%s|%s|%s|%s", key, uiBuildVersion, yarnVersion, argoUICommit, argoCDLdflagsTemplate, b.nodeMajor())
	if r.settle {
		h.Write([]byte("|settle|" + settleSource))
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// nodeMajor returns the major version of the node on PATH, or "none".
// Running node costs 0.05 s on an idle machine and 0.6-0.8 s on a busy
// one, on every lab start; the answer is kept beside the cache, keyed by
// the binary's path, size and modification time.
func (b *Builder) nodeMajor() string {
	path, err := exec.LookPath("node")
	if err != nil {
		return "none"
	}
	st, err := os.Stat(path)
	if err != nil {
		return "none"
	}
	id := fmt.Sprintf("%s|%d|%d", path, st.Size(), st.ModTime().UnixNano())
	memo := filepath.Join(filepath.Dir(b.cacheDir()), "node-version")
	if data, err := os.ReadFile(memo); err == nil {
		if major, seen, ok := strings.Cut(strings.TrimSpace(string(data)), " "); ok && seen == id {
			return major
		}
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return "none"
	}
	major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".")
	_ = fsutil.WriteFileAtomic(memo, []byte(major+" "+id+"\n"), 0o644) // a cache: a failed write costs one more run
	return major
}

// argoCDLdflagsTemplate stamps the version as upstream's release build does
// (Makefile LDFLAGS). The module zip carries no git metadata, so the commit
// is recorded as "unknown" rather than invented; with a tag and a clean
// tree Argo CD reports the tag alone, v3.2.11, as a release does.
const argoCDLdflagsTemplate = "-X {{pkg}}.version={{version}} -X {{pkg}}.buildDate={{date}} -X {{pkg}}.gitCommit=unknown " +
	"-X {{pkg}}.gitTag=v{{version}} -X {{pkg}}.gitTreeState=clean -X {{pkg}}.kubectlVersion={{kubectl}}"

// uiBuild holds one UI build's folders.
type uiBuild struct {
	b    *Builder
	work string        // scratch folder, kept between attempts (yarn's caches key on its paths)
	src  *argoCDSource // the tree the API-only argocd is built from
	env  []string
}

func (b *Builder) buildArgoCDUI(ctx context.Context, path string) error {
	log := b.logger()
	start := time.Now()
	log.Info("building", "tool", "argocd with web UI", "note", "first run only; cached afterwards; the API-only argocd is used if this fails")
	u := &uiBuild{b: b, work: filepath.Join(filepath.Dir(b.cacheDir()), "argocd-ui-build", filepath.Base(filepath.Dir(path))), env: os.Environ()}
	if err := u.checkNode(); err != nil {
		return err
	}
	src, err := b.argoCDSource(ctx)
	if err != nil {
		return fmt.Errorf("argocd web UI: %w", err)
	}
	u.src = src
	type step struct {
		name string
		run  func(context.Context) error
	}
	var steps []step
	// The work folder is keyed like the binary: a UI built by an attempt
	// that failed later (in go build, or stopped) is used again.
	built := filepath.Join(u.work, "ui-built")
	if _, err := os.Stat(built); err == nil {
		log.Info("argocd web UI", "step", "yarn build", "note", "kept from an earlier attempt in "+u.work)
	} else {
		steps = []step{
			{"copy ui/ source", u.copyUI},
			{"argo-ui source", u.argoUI},
			{"yarn " + yarnVersion, u.installYarn},
			{"yarn install --frozen-lockfile", u.yarnInstall},
			{"yarn build", u.yarnBuild},
			{"", func(context.Context) error { return os.WriteFile(built, nil, 0o644) }},
		}
	}
	for _, s := range steps {
		if s.name == "" {
			if err := s.run(ctx); err != nil {
				return err
			}
			continue
		}
		t := time.Now()
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("argocd web UI, step %q: %w", s.name, err)
		}
		log.Info("argocd web UI", "step", s.name, "took", time.Since(t).Round(time.Second))
	}
	t := time.Now()
	if err := u.goBuild(ctx, path); err != nil {
		return fmt.Errorf("argocd web UI, step \"go build\": %w", err)
	}
	log.Info("argocd web UI", "step", "go build", "took", time.Since(t).Round(time.Second))
	// node_modules is 500+ MB; the yarn cache beside it keeps a rebuild
	// (a new pin) fast. The source tree stays: the API-only argocd is
	// built from it too.
	removeInBackground(u.work)
	log.Info("built", "tool", "argocd with web UI", "took", time.Since(start).Round(time.Second))
	return nil
}

// removingSuffix marks a folder set aside for removal.
const removingSuffix = ".removing"

// removeInBackground renames dir aside and deletes it in a goroutine:
// deleting node_modules' hundred thousand files took 41 s of wall time
// (9 CPU-s) that the first lab start spent waiting. A folder whose removal
// a process exit cut short is swept by the next call (sweepRemovals).
func removeInBackground(dir string) {
	aside := dir + removingSuffix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.Rename(dir, aside); err != nil {
		os.RemoveAll(dir)
		return
	}
	go sweepRemovals(filepath.Dir(dir))
}

// sweepRemovals deletes the folders in parent set aside for removal.
func sweepRemovals(parent string) {
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if e.IsDir() && strings.Contains(e.Name(), removingSuffix+"-") {
			os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
}

func (u *uiBuild) checkNode() error {
	for _, prog := range []string{"node", "npm"} {
		if _, err := exec.LookPath(prog); err != nil {
			return &UIError{Reason: prog + " is not on PATH", Fix: "install Node.js 20 or later with npm (Debian: apt-get install nodejs npm), then run tug lab up again"}
		}
	}
	if m, err := strconv.Atoi(u.b.nodeMajor()); err == nil && m < 18 {
		return &UIError{Reason: fmt.Sprintf("node v%d is too old for Argo CD's UI build", m), Fix: "install Node.js 20 or later"}
	}
	return nil
}

// copyUI copies ui/ out of the read-only module cache.
func (u *uiBuild) copyUI(ctx context.Context) error {
	dst := filepath.Join(u.work, "ui")
	// Keep node_modules from an interrupted attempt: yarn checks it against
	// the lockfile anyway.
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(u.src.modDir, "ui"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dst, e.Name()))
		if err := copyTree(ctx, filepath.Join(u.src.modDir, "ui", e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// argoUI makes argo-ui's pinned commit available to yarn: from GitHub when
// it answers (yarn fetches it itself, as the lockfile says), otherwise from
// the vendored archive, as a file: dependency.
func (u *uiBuild) argoUI(ctx context.Context) error {
	if gitReachable(ctx, argoUIGitURL) {
		u.b.logger().Info("argocd web UI", "argo-ui", "from "+argoUIGitURL)
		return nil
	}
	tarball, err := u.vendoredArgoUI()
	if err != nil {
		return err
	}
	if err := checkSHA256(tarball, argoUISHA256); err != nil {
		return err
	}
	u.b.logger().Info("argocd web UI", "argo-ui", "GitHub unreachable; from "+tarball)
	dst := filepath.Join(u.work, "argo-ui")
	os.RemoveAll(dst)
	cmd := exec.CommandContext(ctx, "tar", "-xzf", tarball, "-C", u.work)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tar -xzf %s: %w\n%s", tarball, err, out)
	}
	if _, err := os.Stat(filepath.Join(dst, "package.json")); err != nil {
		return fmt.Errorf("%s has no argo-ui/package.json", tarball)
	}
	return rewriteArgoUIDependency(filepath.Join(u.work, "ui"))
}

// vendoredArgoUI finds the archive: $TUG_VENDOR_DIR, else ../shared/vendor
// beside the repository (where CI keeps it).
func (u *uiBuild) vendoredArgoUI() (string, error) {
	var cands []string
	if d := os.Getenv("TUG_VENDOR_DIR"); d != "" {
		cands = append(cands, filepath.Join(d, argoUITarball))
	}
	repo := filepath.Dir(filepath.Dir(u.b.ModulesDir))
	cands = append(cands, filepath.Join(repo, "..", "shared", "vendor", argoUITarball))
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return filepath.Clean(c), nil
		}
	}
	return "", &UIError{
		Reason: fmt.Sprintf("%s is unreachable and %s is not in %s", argoUIGitURL, argoUITarball, strings.Join(cands, " or ")),
		Fix:    fmt.Sprintf("put a `git archive --prefix=argo-ui/` of argo-ui commit %s there (sha256 %s), or set TUG_VENDOR_DIR", argoUICommit, argoUISHA256),
	}
}

// rewriteArgoUIDependency points package.json and yarn.lock at ../argo-ui:
// the lockfile entry's key changes and its git "resolved" line goes; every
// other pinned package stays as upstream locked it.
func rewriteArgoUIDependency(uiDir string) error {
	edits := []struct {
		file     string
		old, new string
	}{
		{"package.json", `"argo-ui": "git+` + argoUIGitURL + `"`, `"argo-ui": "file:../argo-ui"`},
		{"yarn.lock", `"argo-ui@git+` + argoUIGitURL + `":`, `"argo-ui@file:../argo-ui":`},
		{"yarn.lock", "  resolved \"git+" + argoUIGitURL + "#" + argoUICommit + "\"\n", ""},
	}
	for _, e := range edits {
		p := filepath.Join(uiDir, e.file)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Contains(data, []byte(e.old)) {
			return fmt.Errorf("%s: no %q to rewrite: the pinned Argo CD's UI no longer matches this build recipe (internal/tools/argocdui.go)", p, strings.TrimSpace(e.old))
		}
		if err := os.WriteFile(p, bytes.Replace(data, []byte(e.old), []byte(e.new), 1), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// installYarn installs the pinned yarn 1 from npm into the cache.
func (u *uiBuild) installYarn(ctx context.Context) error {
	if _, err := os.Stat(u.yarn()); err == nil {
		return nil
	}
	if err := registryReachable(ctx); err != nil {
		return err
	}
	prefix := filepath.Dir(filepath.Dir(filepath.Dir(u.yarn())))
	return u.run(ctx, "", "npm", "install", "--prefix", prefix, "--no-audit", "--no-fund", "yarn@"+yarnVersion)
}

func (u *uiBuild) yarn() string {
	return filepath.Join(filepath.Dir(u.b.cacheDir()), "yarn-"+yarnVersion, "node_modules", ".bin", "yarn")
}

func (u *uiBuild) yarnInstall(ctx context.Context) error {
	if err := registryReachable(ctx); err != nil {
		return err
	}
	cache := filepath.Join(filepath.Dir(u.b.cacheDir()), "yarn-cache")
	return u.run(ctx, filepath.Join(u.work, "ui"), u.yarn(), "install", "--frozen-lockfile", "--non-interactive",
		"--network-timeout", "120000", "--cache-folder", cache)
}

// yarnBuild runs `yarn build` in the environment of upstream's Dockerfile
// (its argocd-ui stage).
func (u *uiBuild) yarnBuild(ctx context.Context) error {
	env := []string{"ARGO_VERSION=v" + u.src.version, "HOST_ARCH=" + runtime.GOARCH, "NODE_ENV=production",
		"NODE_ONLINE_ENV=online", "NODE_OPTIONS=--max_old_space_size=8192"}
	saved := u.env
	u.env = append(append([]string(nil), u.env...), env...)
	defer func() { u.env = saved }()
	if err := u.run(ctx, filepath.Join(u.work, "ui"), u.yarn(), "build"); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(u.work, "ui", "dist", "app", "index.html")); err != nil {
		return fmt.Errorf("yarn build wrote no dist/app/index.html")
	}
	return nil
}

// goBuild builds argocd from the source tree the API-only argocd was built
// from, with the built UI added to its ui/dist/app by -overlay: the tree
// itself is never changed, and only the packages that embed or import the
// UI are compiled again.
func (u *uiBuild) goBuild(ctx context.Context, path string) error {
	replace, err := u.src.uiOverlay(filepath.Join(u.work, "ui", "dist", "app"))
	if err != nil {
		return err
	}
	r, pkg := recipes[ArgoCD], recipes[ArgoCD].pkg
	if r.settle {
		settle, settlePkg, err := settleEntries(ctx, ArgoCD, r, u.src.dir, u.env, filepath.Join(u.work, "settle"))
		if err != nil {
			return err
		}
		maps.Copy(replace, settle)
		pkg = settlePkg
	}
	overlay := filepath.Join(u.work, "overlay.json")
	if err := writeOverlay(overlay, replace); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := u.run(ctx, u.src.build, "go", "build", "-o", tmp, "-overlay", overlay, "-ldflags", u.src.ldflags(), pkg); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

func (u *uiBuild) run(ctx context.Context, dir, prog string, args ...string) error {
	env, removeTemp, err := withTempDir(filepath.Join(u.work, "tmp"), u.env)
	if err != nil {
		return err
	}
	defer removeTemp()
	return runCmd(ctx, dir, env, prog, args...)
}

// runCmd runs prog in dir and returns its output's tail on failure. As in
// build, prog's children (yarn's node processes, webpack, the compiler)
// run in a process group of their own and all stop with ctx.
func runCmd(ctx context.Context, dir string, env []string, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	procgroup.Own(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(prog), err)
	}
	err := cmd.Wait()
	procgroup.Kill(cmd)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s stopped: %w", filepath.Base(prog), context.Cause(ctx))
		}
		return fmt.Errorf("%s %s (in %s): %w\n%s", filepath.Base(prog), strings.Join(args, " "), dir, err, tail(out.Bytes(), 30))
	}
	return nil
}

// gitReachable asks the git server for the pinned commit's refs, briefly:
// where GitHub is out of reach (CI), the answer must come in seconds.
func gitReachable(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "ls-remote", "--exit-code", url, "HEAD")
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	return cmd.Run() == nil
}

// registryReachable fails fast, with the fix, when npm's registry does not
// answer: yarn itself would retry for minutes.
func registryReachable(ctx context.Context) error {
	reg := "https://registry.npmjs.org/"
	if out, err := exec.CommandContext(ctx, "npm", "config", "get", "registry").Output(); err == nil && strings.HasPrefix(strings.TrimSpace(string(out)), "http") {
		reg = strings.TrimSpace(string(out))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(reg, "/")+"/yarn", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 500 {
			return nil
		}
		err = fmt.Errorf("HTTP %s", resp.Status)
	}
	return &UIError{Reason: fmt.Sprintf("the npm registry %s does not answer: %v", reg, err), Fix: "check the network or `npm config set registry <mirror>`, then run tug lab up again"}
}

func checkSHA256(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return &UIError{Reason: fmt.Sprintf("%s has sha256 %s, want %s", path, got, want), Fix: "replace it with a `git archive --prefix=argo-ui/` of argo-ui commit " + argoUICommit}
	}
	return nil
}

// copyTree copies a folder (or file) with writable modes: the module cache
// is read-only.
func copyTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(p, target, info.Mode().Perm()|0o200)
		}
		return nil // symlinks: the module zip has none
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
