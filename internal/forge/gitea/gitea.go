// Package gitea implements forge.Forge for Gitea with its Go SDK.
package gitea

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/tug-gitops/tug/internal/forge"
)

// defaultMergeWait bounds how long MergePullRequest waits for Gitea to finish its
// mergeability check (it runs in a queue after the PR is opened and after
// every push to its base) while the base branch does not move.
const defaultMergeWait = 60 * time.Second

// Forge is one repository on a Gitea server.
type Forge struct {
	baseURL       string
	token         string
	version       string
	user          string
	repo          forge.Repo
	cloneURL      string
	defaultBranch string
	mergeWait     time.Duration
	http          *http.Client
	// pause turns the backoff delay into the wait before a merge is tried
	// again: jittered, so that refused mergers spread out.
	pause func(delay time.Duration) time.Duration
}

var _ forge.Forge = (*Forge)(nil)

// New connects to the Gitea at baseURL with token and looks up repo and the
// token's user (git over HTTP authenticates as that user).
func New(ctx context.Context, baseURL, token string, repo forge.Repo) (*Forge, error) {
	return newForge(ctx, baseURL, token, repo, forge.NewHTTPClient())
}

func newForge(ctx context.Context, baseURL, token string, repo forge.Repo, hc *http.Client) (*Forge, error) {
	f := &Forge{baseURL: strings.TrimSuffix(baseURL, "/"), token: token, repo: repo, mergeWait: defaultMergeWait, pause: jittered, http: hc}
	v, err := f.serverVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("gitea %s: %w", f.baseURL, err)
	}
	f.version = sdkVersion(v)
	c, err := f.client(ctx)
	if err != nil {
		return nil, err
	}
	me, _, err := c.GetMyUserInfo()
	if err != nil {
		return nil, fmt.Errorf("gitea %s: the token does not work (%v); check %s", f.baseURL, err, forge.TokenEnv)
	}
	f.user = me.UserName
	r, _, err := c.GetRepo(repo.Owner, repo.Name)
	if err != nil {
		return nil, fmt.Errorf("gitea %s: repository %s: %w", f.baseURL, repo, err)
	}
	f.cloneURL, f.defaultBranch = r.CloneURL, r.DefaultBranch
	return f, nil
}

// client is per call because the SDK keeps the context on the client. It
// fails when the server's version is one the SDK refuses (older than 1.11).
func (f *Forge) client(ctx context.Context) (*sdk.Client, error) {
	c, err := sdk.NewClient(f.baseURL, sdk.SetHTTPClient(f.http), sdk.SetContext(ctx), sdk.SetToken(f.token), sdk.SetGiteaVersion(f.version))
	if err != nil {
		return nil, fmt.Errorf("gitea %s: %w", f.baseURL, err)
	}
	return c, nil
}

// serverVersion reads /api/v1/version without the SDK, which insists on
// parsing it.
func (f *Forge) serverVersion(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.baseURL+"/api/v1/version", nil)
	if err != nil {
		return "", err
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		Version string `json:"version"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /api/v1/version: %s (is this a Gitea?)", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&v); err != nil {
		return "", fmt.Errorf("GET /api/v1/version: %w (is this a Gitea?)", err)
	}
	return v.Version, nil
}

// sdkVersion is the version to tell the SDK: a binary built from the Go
// module without -X main.Version reports "development", which the SDK
// cannot parse; "" makes it assume a current server.
func sdkVersion(v string) string {
	if v == "" || v[0] < '0' || v[0] > '9' {
		return ""
	}
	return v
}

func (f *Forge) Kind() string          { return forge.KindGitea }
func (f *Forge) Repo() forge.Repo      { return f.repo }
func (f *Forge) CloneURL() string      { return f.cloneURL }
func (f *Forge) DefaultBranch() string { return f.defaultBranch }

// GitAuth is HTTP basic auth with the token as the password.
func (f *Forge) GitAuth() transport.AuthMethod {
	return &githttp.BasicAuth{Username: f.user, Password: f.token}
}

func (f *Forge) FindOpenPullRequest(ctx context.Context, head, base string) (*forge.PullRequest, error) {
	c, err := f.client(ctx)
	if err != nil {
		return nil, err
	}
	opt := sdk.ListPullRequestsOptions{State: sdk.StateOpen, ListOptions: sdk.ListOptions{Page: 1, PageSize: 50}}
	for {
		prs, resp, err := c.ListRepoPullRequests(f.repo.Owner, f.repo.Name, opt)
		if err != nil {
			return nil, fmt.Errorf("gitea: list pull requests of %s: %w", f.repo, err)
		}
		for _, p := range prs {
			if p.Head != nil && p.Base != nil && p.Head.Ref == head && p.Base.Ref == base {
				return convert(p), nil
			}
		}
		if resp == nil || resp.NextPage == 0 {
			return nil, nil
		}
		opt.Page = resp.NextPage
	}
}

func (f *Forge) OpenPullRequest(ctx context.Context, n forge.NewPullRequest) (*forge.PullRequest, bool, error) {
	if p, err := f.FindOpenPullRequest(ctx, n.Head, n.Base); err != nil || p != nil {
		return p, false, err
	}
	c, err := f.client(ctx)
	if err != nil {
		return nil, false, err
	}
	p, resp, err := c.CreatePullRequest(f.repo.Owner, f.repo.Name, sdk.CreatePullRequestOption{
		Head: n.Head, Base: n.Base, Title: n.Title, Body: n.Body,
	})
	if err != nil {
		// Another run opened it between our look and our create (409), or
		// the forge gave no answer in time and may have opened it anyway:
		// either way an open pull request for this head is ours.
		switch {
		case isConflict(resp):
			if p, ferr := f.FindOpenPullRequest(ctx, n.Head, n.Base); ferr == nil && p != nil {
				return p, false, nil
			}
		case noAnswer(err):
			if p := f.awaitOpened(ctx, n.Head, n.Base); p != nil {
				return p, true, nil
			}
		}
		return nil, false, fmt.Errorf("gitea: open pull request %s → %s on %s: %w", n.Head, n.Base, f.repo, err)
	}
	return convert(p), true, nil
}

func (f *Forge) GetPullRequest(ctx context.Context, number int64) (*forge.PullRequest, error) {
	p, err := f.pullRequest(ctx, number)
	if err != nil {
		return nil, err
	}
	return convert(p), nil
}

func (f *Forge) pullRequest(ctx context.Context, number int64) (*sdk.PullRequest, error) {
	c, err := f.client(ctx)
	if err != nil {
		return nil, err
	}
	p, _, err := c.GetPullRequest(f.repo.Owner, f.repo.Name, number)
	if err != nil {
		return nil, fmt.Errorf("gitea: pull request #%d of %s: %w", number, f.repo, err)
	}
	return p, nil
}

// MergePullRequest merges with a merge commit. Gitea refuses a merge while
// its mergeability check runs (405 "try again later"; every push to the
// base starts the check again) and when another merge moved the base during
// this one (409). Both are retried, with jittered backoff so that concurrent
// mergers do not collide in lockstep. It gives up once the pull request has
// stayed unmergeable for f.mergeWait with the base branch standing still: while
// other merges land, the wait is progress, not a stuck check.
func (f *Forge) MergePullRequest(ctx context.Context, number int64, message string) (*forge.PullRequest, error) {
	var lastBase, refused string
	var since time.Time
	delay := 100 * time.Millisecond
	for {
		p, err := f.pullRequest(ctx, number)
		if err != nil {
			return nil, err
		}
		if p.HasMerged {
			return convert(p), nil
		}
		if p.State != sdk.StateOpen {
			return nil, fmt.Errorf("gitea: pull request #%d of %s is closed without merge", number, f.repo)
		}
		if base := baseSHA(p); base != lastBase || since.IsZero() {
			lastBase, since = base, time.Now()
		} else if time.Since(since) > f.mergeWait {
			return nil, fmt.Errorf("gitea: merge pull request #%d of %s: still not mergeable after %s with %s unchanged (%s): it conflicts with %[4]s, or Gitea's mergeability check failed; see %[6]s", number, f.repo, f.mergeWait, baseName(p), refused, p.HTMLURL)
		}
		status, msg, err := f.merge(ctx, number, headSHA(p), message)
		switch {
		case err != nil:
			return nil, fmt.Errorf("gitea: merge pull request #%d of %s: %w", number, f.repo, err)
		case status/100 == 2:
			return f.GetPullRequest(ctx, number)
		case !retryableMerge(status, msg):
			return nil, fmt.Errorf("gitea: merge pull request #%d of %s: %d %s", number, f.repo, status, msg)
		}
		refused = fmt.Sprintf("%d %s", status, msg)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("gitea: merge pull request #%d of %s: %w (last answer: %s)", number, f.repo, ctx.Err(), refused)
		case <-time.After(f.pause(delay)):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// jittered is a uniform pick in [delay/2, delay). Without it, the mergers
// refused in one round all come back together and collide again.
func jittered(delay time.Duration) time.Duration { return delay/2 + rand.N(delay/2) }

func baseSHA(p *sdk.PullRequest) string {
	if p.Base == nil {
		return ""
	}
	return p.Base.Sha
}

func baseName(p *sdk.PullRequest) string {
	if p.Base == nil || p.Base.Ref == "" {
		return "the base branch"
	}
	return p.Base.Ref
}

func headSHA(p *sdk.PullRequest) string {
	if p.Head == nil {
		return ""
	}
	return p.Head.Sha
}

// retryableMerge: Gitea's mergeability check is still running ("Please try
// again later"), or another merge moved the base while this one ran
// ("merge push out of date", "head out of date", or git's "cannot lock
// ref" when two merges push the base at the same moment).
func retryableMerge(status int, msg string) bool {
	m := strings.ToLower(msg)
	return (status == http.StatusMethodNotAllowed && strings.Contains(m, "try again later")) ||
		(status == http.StatusConflict && (strings.Contains(m, "out of date") || strings.Contains(m, "cannot lock ref")))
}

// merge calls POST /repos/{owner}/{repo}/pulls/{index}/merge directly: the
// SDK's MergePullRequest drops the response body, and the message is what
// tells "try again later" from a real conflict.
func (f *Forge) merge(ctx context.Context, number int64, headSHA, message string) (int, string, error) {
	body, err := json.Marshal(sdk.MergePullRequestOption{Style: sdk.MergeStyleMerge, Message: message, HeadCommitId: headSHA})
	if err != nil {
		return 0, "", err
	}
	endpoint := fmt.Sprintf("%s/api/v1/repos/%s/%s/pulls/%d/merge", f.baseURL, url.PathEscape(f.repo.Owner), url.PathEscape(f.repo.Name), number)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "token "+f.token)
	resp, err := f.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var apiErr struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &apiErr) == nil && apiErr.Message != "" {
		msg = apiErr.Message
	}
	return resp.StatusCode, msg, nil
}

func (f *Forge) Approve(ctx context.Context, number int64, body string) error {
	p, err := f.GetPullRequest(ctx, number)
	if err != nil {
		return err
	}
	c, err := f.client(ctx)
	if err != nil {
		return err
	}
	_, _, err = c.CreatePullReview(f.repo.Owner, f.repo.Name, number, sdk.CreatePullReviewOptions{
		State: sdk.ReviewStateApproved, Body: body, CommitID: p.HeadSHA,
	})
	if err != nil {
		return fmt.Errorf("gitea: approve pull request #%d of %s: %w", number, f.repo, err)
	}
	return nil
}

func convert(p *sdk.PullRequest) *forge.PullRequest {
	out := &forge.PullRequest{
		Number: p.Index, URL: p.HTMLURL, Title: p.Title, Body: p.Body,
		Open: p.State == sdk.StateOpen, Merged: p.HasMerged,
	}
	if p.Head != nil {
		out.Head, out.HeadSHA = p.Head.Ref, p.Head.Sha
	}
	if p.Base != nil {
		out.Base = p.Base.Ref
	}
	if p.MergedCommitID != nil {
		out.MergeCommit = *p.MergedCommitID
	}
	return out
}

// ListComments pages through the comments. Older Gitea versions ignore the
// page parameters and return everything at once: a page that brings no
// comment not seen before ends the loop.
func (f *Forge) ListComments(ctx context.Context, number int64) ([]forge.Comment, error) {
	const pageSize = 50
	var out []forge.Comment
	seen := map[int64]bool{}
	c, err := f.client(ctx)
	if err != nil {
		return nil, err
	}
	for page := 1; ; page++ {
		cs, _, err := c.ListIssueComments(f.repo.Owner, f.repo.Name, number, sdk.ListIssueCommentOptions{
			ListOptions: sdk.ListOptions{Page: page, PageSize: pageSize},
		})
		if err != nil {
			return nil, fmt.Errorf("gitea: list comments of pull request #%d in %s: %w", number, f.repo, err)
		}
		fresh := 0
		for _, c := range cs {
			if !seen[c.ID] {
				seen[c.ID] = true
				fresh++
				out = append(out, convertComment(c))
			}
		}
		if fresh == 0 || len(cs) < pageSize {
			return out, nil
		}
	}
}

func (f *Forge) CreateComment(ctx context.Context, number int64, body string) (*forge.Comment, error) {
	client, err := f.client(ctx)
	if err != nil {
		return nil, err
	}
	c, _, err := client.CreateIssueComment(f.repo.Owner, f.repo.Name, number, sdk.CreateIssueCommentOption{Body: body})
	if err != nil {
		return nil, fmt.Errorf("gitea: comment on pull request #%d in %s: %w", number, f.repo, err)
	}
	fc := convertComment(c)
	return &fc, nil
}

func (f *Forge) EditComment(ctx context.Context, id int64, body string) (*forge.Comment, error) {
	client, err := f.client(ctx)
	if err != nil {
		return nil, err
	}
	c, _, err := client.EditIssueComment(f.repo.Owner, f.repo.Name, id, sdk.EditIssueCommentOption{Body: body})
	if err != nil {
		return nil, fmt.Errorf("gitea: edit comment %d in %s: %w", id, f.repo, err)
	}
	fc := convertComment(c)
	return &fc, nil
}

func convertComment(c *sdk.Comment) forge.Comment {
	out := forge.Comment{ID: c.ID, URL: c.HTMLURL, Body: c.Body}
	if c.Poster != nil {
		out.Author = c.Poster.UserName
	}
	return out
}

// lateOpenWait bounds the look for a pull request the forge may still be
// opening after the client stopped waiting for its answer: the forge goes
// on with the request, and on a loaded host that can take tens of seconds.
const lateOpenWait = 60 * time.Second

// awaitOpened looks, once a second for up to lateOpenWait, for an open pull
// request from head to base; nil when none appeared.
func (f *Forge) awaitOpened(ctx context.Context, head, base string) *forge.PullRequest {
	ctx, cancel := context.WithTimeout(ctx, lateOpenWait)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if p, err := f.FindOpenPullRequest(ctx, head, base); err == nil && p != nil {
			return p
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func isConflict(resp *sdk.Response) bool {
	return resp != nil && resp.StatusCode == http.StatusConflict
}

// noAnswer reports an exchange that ended without an answer, where the
// forge may still have done what was asked.
func noAnswer(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
