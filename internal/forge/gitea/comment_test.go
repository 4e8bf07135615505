package gitea

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tug-gitops/tug/internal/forge"
)

// The sticky comment on a real Gitea: posted once, edited on every re-run,
// found again past the first page of comments, other comments untouched.
func TestStickyCommentOnRealGitea(t *testing.T) {
	ctx := context.Background()
	repo := seed(t, "sticky")
	author, err := New(ctx, srv.URL(), srv.Token(), repo)
	if err != nil {
		t.Fatal(err)
	}
	reviewer, err := New(ctx, srv.URL(), reviewerToken, repo)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := author.OpenPullRequest(ctx, forge.NewPullRequest{Head: "feature", Base: "main", Title: "feature"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reviewer.CreateComment(ctx, p.Number, "a reviewer's remark"); err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- tug-diff -->"
	first, created, err := forge.UpsertComment(ctx, author, p.Number, marker, "render 1")
	if err != nil || !created {
		t.Fatalf("first run: created=%v %v", created, err)
	}
	// More than a page of other comments after it.
	for i := range 60 {
		if _, err := reviewer.CreateComment(ctx, p.Number, fmt.Sprintf("remark %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for run := 2; run <= 3; run++ {
		c, created, err := forge.UpsertComment(ctx, author, p.Number, marker, fmt.Sprintf("render %d", run))
		if err != nil || created || c.ID != first.ID {
			t.Fatalf("run %d: created=%v id=%d (first %d) %v; want the first comment edited", run, created, c.ID, first.ID, err)
		}
	}
	all, err := author.ListComments(ctx, p.Number)
	if err != nil {
		t.Fatal(err)
	}
	var sticky []forge.Comment
	for _, c := range all {
		if strings.Contains(c.Body, marker) {
			sticky = append(sticky, c)
		}
	}
	if len(all) != 62 || len(sticky) != 1 || sticky[0].Body != marker+"\nrender 3" || sticky[0].Author == "" || sticky[0].Author == "reviewer" {
		t.Fatalf("%d comments, sticky ones: %+v; want 62 comments and one sticky comment saying render 3", len(all), sticky)
	}
	if !strings.Contains(all[0].Body, "a reviewer's remark") {
		t.Errorf("the reviewer's comment changed: %q", all[0].Body)
	}
}
