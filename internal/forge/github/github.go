// Package github implements forge.Forge for GitHub (and GitHub Enterprise)
// with go-github.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gh "github.com/google/go-github/v74/github"

	"github.com/tug-gitops/tug/internal/forge"
)

// Forge is one repository on GitHub.
type Forge struct {
	client        *gh.Client
	token         string
	repo          forge.Repo
	cloneURL      string
	defaultBranch string
}

var _ forge.Forge = (*Forge)(nil)

// New connects to GitHub's API at apiURL (empty: https://api.github.com/;
// GitHub Enterprise: https://HOST/api/v3/) and looks up repo.
func New(ctx context.Context, apiURL, token string, repo forge.Repo) (*Forge, error) {
	c := gh.NewClient(forge.NewHTTPClient()).WithAuthToken(token)
	if apiURL != "" {
		u, err := url.Parse(strings.TrimSuffix(apiURL, "/") + "/")
		if err != nil {
			return nil, fmt.Errorf("github: API URL %q: %w", apiURL, err)
		}
		c.BaseURL = u
	}
	r, _, err := c.Repositories.Get(ctx, repo.Owner, repo.Name)
	if err != nil {
		return nil, fmt.Errorf("github: repository %s: %w", repo, err)
	}
	return &Forge{client: c, token: token, repo: repo, cloneURL: r.GetCloneURL(), defaultBranch: r.GetDefaultBranch()}, nil
}

func (f *Forge) Kind() string          { return forge.KindGitHub }
func (f *Forge) Repo() forge.Repo      { return f.repo }
func (f *Forge) CloneURL() string      { return f.cloneURL }
func (f *Forge) DefaultBranch() string { return f.defaultBranch }

// GitAuth is the documented way to push with a token over HTTPS: user
// x-access-token, the token as password.
func (f *Forge) GitAuth() transport.AuthMethod {
	return &githttp.BasicAuth{Username: "x-access-token", Password: f.token}
}

func (f *Forge) FindOpenPullRequest(ctx context.Context, head, base string) (*forge.PullRequest, error) {
	prs, _, err := f.client.PullRequests.List(ctx, f.repo.Owner, f.repo.Name, &gh.PullRequestListOptions{
		State: "open", Head: f.repo.Owner + ":" + head, Base: base,
	})
	if err != nil {
		return nil, fmt.Errorf("github: list pull requests of %s: %w", f.repo, err)
	}
	for _, p := range prs {
		if p.GetHead().GetRef() == head && p.GetBase().GetRef() == base {
			return convert(p), nil
		}
	}
	return nil, nil
}

func (f *Forge) OpenPullRequest(ctx context.Context, n forge.NewPullRequest) (*forge.PullRequest, bool, error) {
	if p, err := f.FindOpenPullRequest(ctx, n.Head, n.Base); err != nil || p != nil {
		return p, false, err
	}
	p, resp, err := f.client.PullRequests.Create(ctx, f.repo.Owner, f.repo.Name, &gh.NewPullRequest{
		Title: gh.Ptr(n.Title), Head: gh.Ptr(n.Head), Base: gh.Ptr(n.Base), Body: gh.Ptr(n.Body),
	})
	if err != nil {
		// 422 "A pull request already exists": another run was faster.
		if resp != nil && resp.StatusCode == http.StatusUnprocessableEntity {
			if p, ferr := f.FindOpenPullRequest(ctx, n.Head, n.Base); ferr == nil && p != nil {
				return p, false, nil
			}
		}
		return nil, false, fmt.Errorf("github: open pull request %s → %s on %s: %w", n.Head, n.Base, f.repo, err)
	}
	return convert(p), true, nil
}

func (f *Forge) GetPullRequest(ctx context.Context, number int64) (*forge.PullRequest, error) {
	p, _, err := f.client.PullRequests.Get(ctx, f.repo.Owner, f.repo.Name, int(number))
	if err != nil {
		return nil, fmt.Errorf("github: pull request #%d of %s: %w", number, f.repo, err)
	}
	return convert(p), nil
}

// MergePullRequest merges with a merge commit, pinned to the head SHA seen
// (GitHub answers 409 if the branch moved meanwhile).
func (f *Forge) MergePullRequest(ctx context.Context, number int64, message string) (*forge.PullRequest, error) {
	p, err := f.GetPullRequest(ctx, number)
	if err != nil {
		return nil, err
	}
	if p.Merged {
		return p, nil
	}
	res, _, err := f.client.PullRequests.Merge(ctx, f.repo.Owner, f.repo.Name, int(number), message, &gh.PullRequestOptions{
		MergeMethod: "merge", SHA: p.HeadSHA,
	})
	if err != nil {
		return nil, fmt.Errorf("github: merge pull request #%d of %s: %w", number, f.repo, err)
	}
	if !res.GetMerged() {
		return nil, fmt.Errorf("github: merge pull request #%d of %s: %s", number, f.repo, res.GetMessage())
	}
	merged, err := f.GetPullRequest(ctx, number)
	if err != nil {
		return nil, err
	}
	if merged.MergeCommit == "" {
		merged.MergeCommit = res.GetSHA()
	}
	return merged, nil
}

func (f *Forge) Approve(ctx context.Context, number int64, body string) error {
	_, _, err := f.client.PullRequests.CreateReview(ctx, f.repo.Owner, f.repo.Name, int(number), &gh.PullRequestReviewRequest{
		Body: gh.Ptr(body), Event: gh.Ptr("APPROVE"),
	})
	if err != nil {
		var ghErr *gh.ErrorResponse
		if errors.As(err, &ghErr) && ghErr.Response.StatusCode == http.StatusUnprocessableEntity {
			return fmt.Errorf("github: approve pull request #%d of %s: %w (authors cannot approve their own pull requests)", number, f.repo, err)
		}
		return fmt.Errorf("github: approve pull request #%d of %s: %w", number, f.repo, err)
	}
	return nil
}

func convert(p *gh.PullRequest) *forge.PullRequest {
	return &forge.PullRequest{
		Number: int64(p.GetNumber()), URL: p.GetHTMLURL(), Title: p.GetTitle(), Body: p.GetBody(),
		Head: p.GetHead().GetRef(), HeadSHA: p.GetHead().GetSHA(), Base: p.GetBase().GetRef(),
		Open: p.GetState() == "open", Merged: p.GetMerged(), MergeCommit: p.GetMergeCommitSHA(),
	}
}

func (f *Forge) ListComments(ctx context.Context, number int64) ([]forge.Comment, error) {
	var out []forge.Comment
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := f.client.Issues.ListComments(ctx, f.repo.Owner, f.repo.Name, int(number), opts)
		if err != nil {
			return nil, fmt.Errorf("github: list comments of pull request #%d in %s: %w", number, f.repo, err)
		}
		for _, c := range cs {
			out = append(out, convertComment(c))
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

func (f *Forge) CreateComment(ctx context.Context, number int64, body string) (*forge.Comment, error) {
	c, _, err := f.client.Issues.CreateComment(ctx, f.repo.Owner, f.repo.Name, int(number), &gh.IssueComment{Body: gh.Ptr(body)})
	if err != nil {
		return nil, fmt.Errorf("github: comment on pull request #%d in %s: %w", number, f.repo, err)
	}
	fc := convertComment(c)
	return &fc, nil
}

func (f *Forge) EditComment(ctx context.Context, id int64, body string) (*forge.Comment, error) {
	c, _, err := f.client.Issues.EditComment(ctx, f.repo.Owner, f.repo.Name, id, &gh.IssueComment{Body: gh.Ptr(body)})
	if err != nil {
		return nil, fmt.Errorf("github: edit comment %d in %s: %w", id, f.repo, err)
	}
	fc := convertComment(c)
	return &fc, nil
}

func convertComment(c *gh.IssueComment) forge.Comment {
	return forge.Comment{ID: c.GetID(), URL: c.GetHTMLURL(), Author: c.GetUser().GetLogin(), Body: c.GetBody()}
}
