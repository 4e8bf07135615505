// Package forge is what tug needs from a git hosting service to promote by
// pull request: the repository's clone URL and default branch, and opening,
// finding, reading, approving and merging pull requests. Pushing branches is
// git's job (go-git, with the forge's GitAuth). Implementations: gitea
// (code.gitea.io/sdk/gitea) and github (go-github).
package forge

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Kinds of forge.
const (
	KindGitea  = "gitea"
	KindGitHub = "github"
)

// Repo names a repository on a forge.
type Repo struct {
	Owner string
	Name  string
}

func (r Repo) String() string { return r.Owner + "/" + r.Name }

// PullRequest is the forge-neutral view of a pull request.
type PullRequest struct {
	Number int64 `json:"number"`
	// URL is the page a person opens.
	URL         string `json:"url"`
	Title       string `json:"title"`
	Body        string `json:"-"`
	Head        string `json:"head"` // branch name
	HeadSHA     string `json:"headSHA"`
	Base        string `json:"base"` // branch name
	Open        bool   `json:"open"`
	Merged      bool   `json:"merged"`
	MergeCommit string `json:"mergeCommit,omitempty"` // set once merged
}

// NewPullRequest is what OpenPullRequest creates.
type NewPullRequest struct {
	Head, Base  string
	Title, Body string
}

// Forge is one repository on a git hosting service.
type Forge interface {
	// Kind is KindGitea or KindGitHub.
	Kind() string
	Repo() Repo
	// CloneURL is the repository's HTTP(S) URL, without credentials.
	CloneURL() string
	// GitAuth authenticates git over HTTP with the token; never put the
	// token into a URL.
	GitAuth() transport.AuthMethod
	// DefaultBranch is the branch pull requests merge into.
	DefaultBranch() string
	// FindOpenPullRequest returns the open pull request from head into
	// base, or nil when there is none.
	FindOpenPullRequest(ctx context.Context, head, base string) (*PullRequest, error)
	// OpenPullRequest opens a pull request, or returns the open one for the
	// same head and base (created is then false; title and body are left
	// as they are).
	OpenPullRequest(ctx context.Context, pr NewPullRequest) (p *PullRequest, created bool, err error)
	GetPullRequest(ctx context.Context, number int64) (*PullRequest, error)
	// MergePullRequest merges with a merge commit and returns the merged
	// pull request (MergeCommit set). Merging a merged one returns it.
	MergePullRequest(ctx context.Context, number int64, message string) (*PullRequest, error)
	// Approve submits an approving review as the token's user (forges do
	// not let authors approve their own pull requests; use a reviewer's
	// token).
	Approve(ctx context.Context, number int64, body string) error
	// ListComments returns every comment on the pull request, oldest
	// first (all pages).
	ListComments(ctx context.Context, number int64) ([]Comment, error)
	// CreateComment posts a comment on the pull request.
	CreateComment(ctx context.Context, number int64, body string) (*Comment, error)
	// EditComment replaces the body of a comment.
	EditComment(ctx context.Context, id int64, body string) (*Comment, error)
}

// Comment is a pull request's conversation comment.
type Comment struct {
	ID     int64  `json:"id"`
	URL    string `json:"url"`
	Author string `json:"author"`
	Body   string `json:"-"`
}

// Bounds on one HTTP exchange with a forge, so that a forge that accepts a
// connection and never answers cannot hang tug: they hold when the
// caller's context has no deadline.
const (
	DialTimeout = 10 * time.Second
	// A busy forge serializes writes to one repository: ten pull requests
	// opened at once on a loaded 2-core host wait tens of seconds for their
	// turn (45 s measured for the last of ten), so the bound on an answer is
	// generous; it is there for a forge that never answers at all.
	HeaderTimeout  = 2 * time.Minute
	RequestTimeout = 3 * time.Minute // the whole exchange, body included
)

// NewHTTPClient is the client every forge implementation talks through:
// Go's default transport (proxy from the environment, HTTP/2, keep-alives)
// with the bounds above. http.DefaultClient has none.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = DialTimeout
	t.ResponseHeaderTimeout = HeaderTimeout
	return &http.Client{Transport: t, Timeout: RequestTimeout}
}

// TokenEnv is the environment variable holding the forge token.
const TokenEnv = "TUG_FORGE_TOKEN"

// TokenFileEnv names a file holding the forge token. The path is not a
// secret, so it can be exported where the token itself should not be
// (tug lab env exports the lab forge's token file).
const TokenFileEnv = "TUG_FORGE_TOKEN_FILE"

// maxTokenFile bounds what is read from TUG_FORGE_TOKEN_FILE: a token is
// tens of bytes, and a path set to a large file by mistake must not be
// read whole.
const maxTokenFile = 4 << 10

// Token reads the token for kind: $TUG_FORGE_TOKEN, else the file named by
// $TUG_FORGE_TOKEN_FILE (surrounding whitespace trimmed), else for GitHub
// $GITHUB_TOKEN. The error says what to set; the token itself never
// appears in errors or logs.
func Token(kind string) (string, error) {
	if t := os.Getenv(TokenEnv); t != "" {
		return t, nil
	}
	if path := os.Getenv(TokenFileEnv); path != "" {
		return tokenFile(path)
	}
	if kind == KindGitHub {
		if t := os.Getenv("GITHUB_TOKEN"); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("no forge token: set %s (or %s, or GITHUB_TOKEN) to a token that may push branches and open pull requests", TokenEnv, TokenFileEnv)
	}
	return "", fmt.Errorf("no forge token: set %s, or %s to a file holding it: a %s access token with scopes write:repository,write:issue,write:user", TokenEnv, TokenFileEnv, kind)
}

func tokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", TokenFileEnv, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("%s: read %s: %w", TokenFileEnv, path, err)
	}
	if len(data) > maxTokenFile {
		return "", fmt.Errorf("%s: %s is larger than %d bytes: is it the token file?", TokenFileEnv, path, maxTokenFile)
	}
	t := strings.TrimSpace(string(data))
	if t == "" || strings.ContainsAny(t, " \t\r\n") {
		return "", fmt.Errorf("%s: %s must hold one token and nothing else", TokenFileEnv, path)
	}
	return t, nil
}
