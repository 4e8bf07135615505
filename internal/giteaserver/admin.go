package giteaserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/tug-gitops/tug/internal/fsutil"
)

// TokenScopes are the scopes of every token this package creates: enough
// to create organizations, users (for reviewers), repositories, branches,
// pull requests and reviews, and to merge. (Gitea's "all" scope was seen
// producing a token that cannot create pull requests.)
const TokenScopes = "write:admin,write:organization,write:repository,write:issue,write:user"

// ensureAdmin makes sure the admin user exists and its token is in
// StateDir/admin-token (0600), using the gitea CLI before the server starts
// so that nothing else holds the SQLite database. A second start on the same
// state directory reuses both.
func (s *Server) ensureAdmin(ctx context.Context) error {
	data, err := os.ReadFile(s.layout.tokenPath())
	if err == nil && len(strings.TrimSpace(string(data))) > 0 {
		s.token = strings.TrimSpace(string(data))
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("giteaserver: read token: %w", err)
	}
	began := time.Now()
	// The database schema must exist before `admin user create`.
	if _, err := s.gitea(ctx, "migrate"); err != nil {
		return fmt.Errorf("giteaserver: %w\nlog tail:\n%s", err, s.LogTail())
	}
	user := s.opts.AdminUser
	_, err = s.gitea(ctx, "admin", "user", "create",
		"--username", user, "--email", user+"@noreply.localhost",
		"--password", randomString(32), "--admin", "--must-change-password=false")
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("giteaserver: %w", err)
	}
	// Seen once in a while on a loaded machine: the command succeeds but
	// prints no token. Ask again (a new name each time) before giving up.
	var token string
	for attempt := 1; ; attempt++ {
		if token, err = s.generateToken(ctx, user); err == nil || attempt == 3 {
			break
		}
		s.opts.Logger.Warn("gitea gave no access token; trying again", "attempt", attempt, "err", err)
	}
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(s.layout.tokenPath(), []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("giteaserver: save token: %w", err)
	}
	s.token = token
	s.opts.Logger.Info("gitea admin user ready", "user", user, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// isToken: Gitea access tokens are 40 hex characters.
func isToken(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// generateToken makes an access token for user with the gitea CLI.
func (s *Server) generateToken(ctx context.Context, user string) (string, error) {
	// A token name must be unique per user; a previous start may have died
	// after creating one but before saving it.
	name := "tug-" + time.Now().UTC().Format("20060102T150405.000000")
	out, err := s.gitea(ctx, "admin", "user", "generate-access-token",
		"--username", user, "--token-name", name, "--scopes", TokenScopes, "--raw")
	if err != nil {
		return "", fmt.Errorf("giteaserver: %w", err)
	}
	// Gitea's own log lines (a warning when run as root, among others) share
	// stdout with the token: take the line shaped like one.
	token := ""
	var other []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if isToken(line) {
			token = line
		} else if line != "" {
			other = append(other, line)
		}
	}
	if token == "" {
		// No line is token-shaped, so what was printed holds no secret.
		return "", fmt.Errorf("giteaserver: gitea admin user generate-access-token --raw printed no token; it printed:\n%s", strings.Join(other, "\n"))
	}
	return token, nil
}
