// Package connect opens the forge repository a command works on: it
// completes a Target from what the user gave (flags, environment) and the
// repository (tug.yaml's repoURL, else the origin remote), reads the token,
// and connects with the right implementation (gitea or github).
package connect

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5"

	"github.com/tug-gitops/tug/internal/config"
	"github.com/tug-gitops/tug/internal/forge"
	giteaforge "github.com/tug-gitops/tug/internal/forge/gitea"
	githubforge "github.com/tug-gitops/tug/internal/forge/github"
)

// Target says which forge repository to open; empty fields are derived
// (see Complete).
type Target struct {
	Kind  string // forge.KindGitea or forge.KindGitHub
	URL   string // Gitea base URL or GitHub API URL
	Owner string
	Name  string
}

// Explicit reports whether any field was given.
func (t Target) Explicit() bool { return t.Kind != "" || t.URL != "" || t.Owner != "" || t.Name != "" }

// TargetError is a forge target that cannot be worked out from the flags
// and the repository, or a missing token: the user must say more.
type TargetError struct{ Msg string }

func (e TargetError) Error() string { return e.Msg }

// KindRule says in words how Complete picks the forge kind, for --help.
const KindRule = `github when the forge URL (else the repository URL) is on github.com
or is a GitHub Enterprise API URL (.../api/v3), else gitea`

// Open completes t (see Complete) and connects with the token from the
// environment (forge.Token).
func Open(ctx context.Context, repoDir string, t Target) (forge.Forge, error) {
	t, err := Complete(repoDir, t)
	if err != nil {
		return nil, err
	}
	token, err := forge.Token(t.Kind)
	if err != nil {
		return nil, TargetError{err.Error()}
	}
	r := forge.Repo{Owner: t.Owner, Name: t.Name}
	switch t.Kind {
	case forge.KindGitea:
		return giteaforge.New(ctx, t.URL, token, r)
	case forge.KindGitHub:
		return githubforge.New(ctx, t.URL, token, r)
	}
	return nil, TargetError{fmt.Sprintf("unknown forge %q: use gitea or github", t.Kind)}
}

// Complete fills the empty fields of t. Owner and name come from tug.yaml's
// repoURL, else the origin remote of repoDir. The kind follows KindRule: a
// forge URL that is given (--forge-url, or $TUG_FORGE_URL as the lab
// exports it) decides over the repository URL, which names the
// repository's home in the real world (the lab's Gitea serves a copy of a
// github.com repository). The URL, when not given, is the repository
// URL's base for Gitea, and the Enterprise API URL for a GitHub that is
// not github.com.
func Complete(repoDir string, t Target) (Target, error) {
	if t.Kind != "" && t.URL != "" && t.Owner != "" && t.Name != "" {
		return t, nil
	}
	raw, where := repositoryURL(repoDir)
	if raw == "" {
		if t.Owner == "" || t.Name == "" || t.URL == "" && t.Kind != forge.KindGitHub {
			return t, TargetError{"cannot tell which forge repository to use: tug.yaml has no repoURL and there is no origin remote; pass --forge, --forge-url, --owner and --name"}
		}
	}
	var host, base, owner, name string
	if raw != "" {
		var err error
		host, base, owner, name, err = splitRepoURL(raw)
		if err != nil {
			return t, TargetError{fmt.Sprintf("%s (%s): %v; pass --owner and --name", raw, where, err)}
		}
	}
	if t.Owner == "" {
		t.Owner = owner
	}
	if t.Name == "" {
		t.Name = name
	}
	if t.Kind == "" {
		t.Kind = inferKind(t.URL, host)
	}
	if t.URL == "" {
		switch {
		case t.Kind == forge.KindGitea:
			t.URL = base
		case host != "" && host != "github.com":
			t.URL = base + "/api/v3/" // GitHub Enterprise
		}
	}
	return t, nil
}

// inferKind applies KindRule to the forge URL if given, else to the
// repository URL's host.
func inferKind(forgeURL, repoHost string) string {
	if forgeURL != "" {
		u, err := url.Parse(forgeURL)
		if err == nil && (isGitHubHost(u.Hostname()) || strings.Contains(u.Path, "/api/v3")) {
			return forge.KindGitHub
		}
		return forge.KindGitea
	}
	if isGitHubHost(repoHost) {
		return forge.KindGitHub
	}
	return forge.KindGitea
}

func isGitHubHost(h string) bool { return h == "github.com" || h == "api.github.com" }

// repositoryURL is tug.yaml's repoURL, else the origin remote's URL, and
// which of the two it is.
func repositoryURL(repoDir string) (string, string) {
	if cfg, err := config.Load(repoDir); err == nil && cfg.RepoURL != "" {
		return cfg.RepoURL, config.FileName
	}
	r, err := git.PlainOpenWithOptions(repoDir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return "", ""
	}
	rem, err := r.Remote("origin")
	if err != nil || len(rem.Config().URLs) == 0 {
		return "", ""
	}
	return rem.Config().URLs[0], "origin remote"
}

// splitRepoURL takes https://host[/prefix]/owner/name(.git) or
// git@host:owner/name(.git) apart. base is scheme://host[/prefix].
func splitRepoURL(raw string) (host, base, owner, name string, err error) {
	if !strings.Contains(raw, "://") {
		if at, colon := strings.Index(raw, "@"), strings.Index(raw, ":"); at >= 0 && colon > at {
			raw = "https://" + raw[at+1:colon] + "/" + raw[colon+1:]
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", "", err
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || u.Host == "" {
		return "", "", "", "", fmt.Errorf("not a repository URL of the form https://host/owner/name")
	}
	name = strings.TrimSuffix(parts[len(parts)-1], ".git")
	owner = parts[len(parts)-2]
	scheme := u.Scheme
	if scheme == "ssh" || scheme == "git" {
		scheme = "https"
	}
	base = scheme + "://" + u.Host
	if prefix := strings.Join(parts[:len(parts)-2], "/"); prefix != "" {
		base += "/" + prefix
	}
	return u.Hostname(), base, owner, name, nil
}
