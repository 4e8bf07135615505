package github

// THIS TEST TALKS TO A FAKE GITHUB (see github_test.go for why): an
// httptest server answering the issue-comment endpoints with GitHub's
// documented shapes, paging as GitHub does (per_page, page, and a Link
// header naming the next page).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tug-gitops/tug/internal/forge"
)

type fakeComments struct {
	t        *testing.T
	mu       sync.Mutex
	comments []map[string]any
	nextID   int64
	creates  int
	edits    int
}

func (f *fakeComments) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+fakeToken {
		reply(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		return
	}
	const repo = "/repos/tug-gitops/tug"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == repo:
		reply(w, http.StatusOK, map[string]any{"name": "tug", "full_name": "tug-gitops/tug", "default_branch": "main", "clone_url": "https://github.com/tug-gitops/tug.git"})
	case r.Method == http.MethodGet && r.URL.Path == repo+"/issues/1347/comments":
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if per <= 0 {
			per = 30
		}
		if page <= 0 {
			page = 1
		}
		lo, hi := min((page-1)*per, len(f.comments)), min(page*per, len(f.comments))
		if hi < len(f.comments) {
			w.Header().Set("Link", fmt.Sprintf(`<http://%s%s?per_page=%d&page=%d>; rel="next"`, r.Host, r.URL.Path, per, page+1))
		}
		reply(w, http.StatusOK, f.comments[lo:hi])
	case r.Method == http.MethodPost && r.URL.Path == repo+"/issues/1347/comments":
		var req map[string]string
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.creates++
		f.nextID++
		c := map[string]any{
			"id": f.nextID, "body": req["body"], "user": map[string]any{"login": "tug-bot"},
			"html_url": fmt.Sprintf("https://github.com/tug-gitops/tug/pull/1347#issuecomment-%d", f.nextID),
		}
		f.comments = append(f.comments, c)
		reply(w, http.StatusCreated, c)
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, repo+"/issues/comments/"):
		id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, repo+"/issues/comments/"), 10, 64)
		var req map[string]string
		_ = json.NewDecoder(r.Body).Decode(&req)
		for _, c := range f.comments {
			if c["id"].(int64) == id {
				f.edits++
				c["body"] = req["body"]
				reply(w, http.StatusOK, c)
				return
			}
		}
		reply(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	default:
		reply(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	}
}

func TestStickyCommentAgainstFakeGitHub(t *testing.T) {
	fake := &fakeComments{t: t}
	// 150 comments by people first: the sticky one lands on page 2.
	for i := 0; i < 150; i++ {
		fake.nextID++
		fake.comments = append(fake.comments, map[string]any{"id": fake.nextID, "body": fmt.Sprintf("review remark %d", i), "user": map[string]any{"login": "someone"}})
	}
	srv := httptest.NewServer(http.HandlerFunc(fake.serve))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	f, err := New(ctx, srv.URL, fakeToken, forge.Repo{Owner: "tug-gitops", Name: "tug"})
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- tug-diff -->"
	c, created, err := forge.UpsertComment(ctx, f, 1347, marker, "first render")
	if err != nil || !created || !strings.HasPrefix(c.URL, "https://github.com/tug-gitops/tug/pull/1347#issuecomment-") {
		t.Fatalf("first: created=%v %+v %v", created, c, err)
	}
	all, err := f.ListComments(ctx, 1347)
	if err != nil || len(all) != 151 {
		t.Fatalf("list: %d comments, %v; want 151 across pages", len(all), err)
	}
	c2, created, err := forge.UpsertComment(ctx, f, 1347, marker, "second render")
	if err != nil || created || c2.ID != c.ID {
		t.Fatalf("second: created=%v %+v %v; want the first comment edited", created, c2, err)
	}
	// Same body again: nothing to send.
	if _, created, err := forge.UpsertComment(ctx, f, 1347, marker, "second render"); err != nil || created {
		t.Fatalf("third: created=%v %v", created, err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.creates != 1 || fake.edits != 1 {
		t.Fatalf("creates=%d edits=%d, want one comment created and edited once", fake.creates, fake.edits)
	}
	if got := fake.comments[150]["body"]; got != marker+"\nsecond render" {
		t.Fatalf("sticky comment body = %q", got)
	}
}
