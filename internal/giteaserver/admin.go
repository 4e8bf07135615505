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
// pull requests and reviews, to merge, and to push container images.
// (Gitea's "all" scope was seen
// producing a token that cannot create pull requests.)
const TokenScopes = "write:admin,write:organization,write:repository,write:issue,write:user,write:package"

// ensureAdmin makes sure the admin user exists and its token is in
// StateDir/admin-token (0600), using the gitea CLI before the server starts
// so that nothing else holds the SQLite database. A second start on the same
// state directory reuses both.
func (s *Server) ensureAdmin(ctx context.Context) error {
	data, err := os.ReadFile(s.layout.tokenPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("giteaserver: read token: %w", err)
	}
	if saved := strings.TrimSpace(string(data)); saved != "" {
		// A token made with other scopes (an older state folder) is
		// replaced by one with today's: Gitea cannot widen a token.
		if scopes, _ := os.ReadFile(s.layout.tokenScopesPath()); strings.TrimSpace(string(scopes)) == TokenScopes {
			s.token = saved
			return nil
		}
		token, err := s.generateToken(ctx, s.opts.AdminUser)
		if err != nil {
			return err
		}
		return s.saveToken(token)
	}
	began := time.Now()
	// The database schema must exist before `admin user create`.
	if _, err := s.gitea(ctx, "migrate"); err != nil {
		return fmt.Errorf("giteaserver: %w\nlog tail:\n%s", err, s.LogTail())
	}
	user := s.opts.AdminUser
	// One process creates the user and its token (each gitea CLI run costs
	// a few hundred milliseconds of start-up).
	out, err := s.gitea(ctx, "admin", "user", "create",
		"--username", user, "--email", user+"@noreply.localhost",
		"--password", randomString(32), "--admin", "--must-change-password=false",
		"--access-token", "--access-token-name", tokenName(), "--access-token-scopes", TokenScopes)
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("giteaserver: %w", err)
	}
	token, _ := tokenIn(out)
	// The user may exist from a start that died before saving the token, and
	// on a loaded machine gitea has been seen to print no token: ask for one
	// (a new name each time) before giving up.
	for attempt := 1; token == ""; attempt++ {
		if token, err = s.generateToken(ctx, user); err == nil || attempt == 3 {
			break
		}
		s.opts.Logger.Warn("gitea gave no access token; trying again", "attempt", attempt, "err", err)
	}
	if err != nil {
		return err
	}
	if err := s.saveToken(token); err != nil {
		return err
	}
	s.opts.Logger.Info("gitea admin user ready", "user", user, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// saveToken keeps the admin's token (0600) and the scopes it was made with.
func (s *Server) saveToken(token string) error {
	if err := fsutil.WriteFileAtomic(s.layout.tokenPath(), []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("giteaserver: save token: %w", err)
	}
	if err := fsutil.WriteFileAtomic(s.layout.tokenScopesPath(), []byte(TokenScopes+"\n"), 0o600); err != nil {
		return fmt.Errorf("giteaserver: save token scopes: %w", err)
	}
	s.token = token
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
	out, err := s.gitea(ctx, "admin", "user", "generate-access-token",
		"--username", user, "--token-name", tokenName(), "--scopes", TokenScopes, "--raw")
	if err != nil {
		return "", fmt.Errorf("giteaserver: %w", err)
	}
	token, other := tokenIn(out)
	if token == "" {
		// Nothing printed is token-shaped, so what was printed holds no secret.
		return "", fmt.Errorf("giteaserver: gitea admin user generate-access-token --raw printed no token; it printed:\n%s", strings.Join(other, "\n"))
	}
	return token, nil
}

// tokenName is unique per call: a name must be unique per user, and a
// previous start may have died after creating a token but before saving it.
func tokenName() string { return "tug-" + time.Now().UTC().Format("20060102T150405.000000") }

// tokenIn finds the access token in what a gitea CLI command printed: its
// own log lines (a warning when run as root, among others) share stdout
// with it, and `admin user create` prints it at the end of a sentence. The
// other lines are returned for error messages.
func tokenIn(out []byte) (token string, other []string) {
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		found := false
		for _, word := range strings.Fields(line) {
			if isToken(word) {
				token, found = word, true
			}
		}
		if !found && line != "" {
			other = append(other, line)
		}
	}
	return token, other
}
