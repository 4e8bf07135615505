package giteaserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/tug-gitops/tug/internal/fsutil"
)

// secrets are Gitea's server-side keys. They are generated once per state
// directory and reused, because Gitea otherwise invents new ones and writes
// them back into app.ini, and the app.ini is rewritten on every start (the
// port may change).
type secrets struct {
	SecretKey     string `json:"secretKey"`
	InternalToken string `json:"internalToken"`
	JWTSecret     string `json:"jwtSecret"`
	LFSJWTSecret  string `json:"lfsJwtSecret"`
}

func loadOrCreateSecrets(path string) (secrets, error) {
	var s secrets
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &s); err != nil {
			return s, fmt.Errorf("%s is corrupt (%v); delete the state directory to start over", path, err)
		}
		return s, nil
	case !errors.Is(err, fs.ErrNotExist):
		return s, err
	}
	s = secrets{
		SecretKey:     randomString(48),
		InternalToken: randomString(48),
		JWTSecret:     jwtSecret(),
		LFSJWTSecret:  jwtSecret(),
	}
	data, err = json.Marshal(s)
	if err != nil {
		return s, err
	}
	return s, fsutil.WriteFileAtomic(path, data, 0o600)
}

// randomString returns n URL-safe characters from crypto/rand.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// jwtSecret is 32 random bytes in the encoding Gitea expects
// (modules/generate.DecodeJwtSecretBase64).
func jwtSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// appINI renders the whole configuration. Everything lives under the state
// directory; the choices aim at a quiet, fast, offline start:
// no SSH, no mail, no cron, no Actions, no LFS, issue indexer in the
// database (no bleve index to open), sessions in memory. Packages are on:
// the forge is also the lab's container registry (see Registry).
func appINI(l layout, port int, s secrets, staticRoot string) string {
	runUser := "root"
	if u, err := user.Current(); err == nil {
		runUser = u.Username
	}
	v := map[string]string{
		"RUN_USER":  runUser,
		"WORK_PATH": l.stateDir,
		"PORT":      fmt.Sprint(port),
		"DATA":      l.dataDir(),
		"REPOS":     filepath.Join(l.stateDir, "repositories"),
		"LOG":       l.logDir(),
		"DB":        filepath.Join(l.dataDir(), "gitea.db"),
		"SECRET":    s.SecretKey,
		"INTERNAL":  s.InternalToken,
		"JWT":       s.JWTSecret,
		"LFSJWT":    s.LFSJWTSecret,
		"STATIC":    staticRoot,
	}
	ini := appINITemplate
	for k, val := range v {
		ini = strings.ReplaceAll(ini, "{{"+k+"}}", val)
	}
	return ini
}

const appINITemplate = `; Written by tug (internal/giteaserver) on every start; edits are lost.
APP_NAME = tug lab forge
RUN_MODE = prod
RUN_USER = {{RUN_USER}}
WORK_PATH = {{WORK_PATH}}
; CI runs as root; Gitea refuses that without this key.
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {{PORT}}
DOMAIN = 127.0.0.1
ROOT_URL = http://127.0.0.1:{{PORT}}/
APP_DATA_PATH = {{DATA}}
STATIC_ROOT_PATH = {{STATIC}}
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
LFS_JWT_SECRET = {{LFSJWT}}
ENABLE_PPROF = false

[database]
DB_TYPE = sqlite3
PATH = {{DB}}
SQLITE_JOURNAL_MODE = WAL
; Wait for a lock instead of failing after Gitea's default 500 ms: ten
; concurrent merges and the mergeability checks they trigger write at once,
; and a check that fails on "database is locked" leaves its pull request
; unmergeable for good (seen in the e2e test of ten concurrent promotions).
SQLITE_TIMEOUT = 30000
; A local SQLite file either opens or never will: fail at once, not after 10 tries.
DB_RETRIES = 1
LOG_SQL = false

[repository]
ROOT = {{REPOS}}
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = {{SECRET}}
INTERNAL_TOKEN = {{INTERNAL}}
PASSWORD_HASH_ALGO = pbkdf2

[oauth2]
ENABLED = false
JWT_SECRET = {{JWT}}

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false
ENABLE_NOTIFY_MAIL = false
DEFAULT_KEEP_EMAIL_PRIVATE = true
NO_REPLY_ADDRESS = noreply.localhost

[mailer]
ENABLED = false

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[queue]
TYPE = channel

; Not the channel type for the mergeability checks: its unique queue adds a
; pull request to its "queued" set after handing it to an idle worker, and
; if the worker takes it off the set first, the set keeps it for good. Every
; later check of that pull request is then refused as already queued, and it
; stays unmergeable ("try again later") until Gitea restarts; seen once in
; ten concurrent merges in CI. The level queue pushes and pops under one lock.
[queue.pr_patch_checker]
TYPE = level

[cron]
ENABLED = false

[cron.update_checker]
ENABLED = false

[actions]
ENABLED = false

; The container registry at 127.0.0.1:PORT/<owner>/<image>. A package
; takes its owner's visibility: the public organization's images are pulled
; without credentials (containerd's mirror), pushed with the admin token.
[packages]
ENABLED = true

[webhook]
; The lab may point webhooks at Argo CD on 127.0.0.1.
ALLOWED_HOST_LIST = loopback

[log]
MODE = file
LEVEL = Info
ROOT_PATH = {{LOG}}
`
