package github

// THIS TEST TALKS TO A FAKE GITHUB. There is no GitHub (and no internet) on
// the machines that run tug's tests, so fakeGitHub below is an httptest
// server that answers the handful of REST endpoints the github forge uses
// with GitHub's documented response bodies (testdata/*.json, taken from the
// examples on docs.github.com/rest and trimmed to the fields that matter),
// keeping just enough state (open → merged) to play a promotion through.
// It checks the requests the way GitHub would: token in the Authorization
// header, merge method and head SHA in the merge call, APPROVE as the event.
// The Gitea forge, by contrast, is tested against a real Gitea.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/tug-gitops/tug/internal/forge"
)

const fakeToken = "ghp_faketoken0123456789"

type fakeGitHub struct {
	t          *testing.T
	mu         sync.Mutex
	pr         map[string]any // the one pull request, nil until created
	merged     bool
	mergeBody  map[string]any
	reviewBody map[string]any
	creates    int
	hideLists  int // list calls that pretend there is no open pull request
}

func newFakeGitHub(t *testing.T) (*fakeGitHub, *httptest.Server) {
	f := &fakeGitHub{t: t}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeGitHub) fixture(name string) map[string]any {
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		f.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+fakeToken {
		reply(w, http.StatusUnauthorized, f.fixture("bad-credentials.json"))
		return
	}
	const repo = "/repos/tug-gitops/tug"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == repo:
		reply(w, http.StatusOK, f.fixture("repo.json"))
	case r.Method == http.MethodGet && r.URL.Path == repo+"/pulls":
		q := r.URL.Query()
		out := []any{}
		if f.hideLists > 0 {
			f.hideLists--
		} else if f.pr != nil && !f.merged && q.Get("state") == "open" &&
			q.Get("head") == "tug-gitops:"+f.pr["head"].(map[string]any)["ref"].(string) &&
			q.Get("base") == f.pr["base"].(map[string]any)["ref"] {
			out = append(out, f.pr)
		}
		reply(w, http.StatusOK, out)
	case r.Method == http.MethodPost && r.URL.Path == repo+"/pulls":
		var req map[string]string
		_ = json.NewDecoder(r.Body).Decode(&req)
		if f.pr != nil && !f.merged {
			e := f.fixture("unprocessable-exists.json")
			reply(w, http.StatusUnprocessableEntity, e)
			return
		}
		f.creates++
		pr := f.fixture("pull.json")
		pr["title"], pr["body"] = req["title"], req["body"]
		pr["head"].(map[string]any)["ref"] = req["head"]
		pr["base"].(map[string]any)["ref"] = req["base"]
		f.pr, f.merged = pr, false
		reply(w, http.StatusCreated, pr)
	case r.Method == http.MethodGet && r.URL.Path == repo+"/pulls/1347" && f.pr != nil:
		reply(w, http.StatusOK, f.pr)
	case r.Method == http.MethodPut && r.URL.Path == repo+"/pulls/1347/merge" && f.pr != nil:
		_ = json.NewDecoder(r.Body).Decode(&f.mergeBody)
		f.merged = true
		f.pr["state"], f.pr["merged"], f.pr["merged_at"] = "closed", true, "2011-01-26T19:01:12Z"
		reply(w, http.StatusOK, f.fixture("merge.json"))
	case r.Method == http.MethodPost && r.URL.Path == repo+"/pulls/1347/reviews" && f.pr != nil:
		_ = json.NewDecoder(r.Body).Decode(&f.reviewBody)
		reply(w, http.StatusOK, f.fixture("review.json"))
	default:
		reply(w, http.StatusNotFound, map[string]string{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
	}
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func TestPromotionFlowAgainstFakeGitHub(t *testing.T) {
	fake, srv := newFakeGitHub(t)
	ctx := context.Background()
	f, err := New(ctx, srv.URL, fakeToken, forge.Repo{Owner: "tug-gitops", Name: "tug"})
	if err != nil {
		t.Fatal(err)
	}
	if f.DefaultBranch() != "main" || f.CloneURL() != "https://github.com/tug-gitops/tug.git" {
		t.Fatalf("repo info: %q %q", f.DefaultBranch(), f.CloneURL())
	}
	if p, err := f.FindOpenPullRequest(ctx, "promote/backend-prod-0.2.0", "main"); err != nil || p != nil {
		t.Fatalf("before open: %v %v", p, err)
	}
	n := forge.NewPullRequest{Head: "promote/backend-prod-0.2.0", Base: "main", Title: "Promote backend to prod: 0.1.0 → 0.2.0", Body: "body"}
	p, created, err := f.OpenPullRequest(ctx, n)
	if err != nil || !created || p.Number != 1347 || p.Head != n.Head || p.Title != n.Title || !p.Open {
		t.Fatalf("open: created=%v %+v %v", created, p, err)
	}
	// Re-running reuses the open pull request.
	again, created, err := f.OpenPullRequest(ctx, n)
	if err != nil || created || again.Number != 1347 || fake.creates != 1 {
		t.Fatalf("re-open: created=%v creates=%d %+v %v", created, fake.creates, again, err)
	}
	if err := f.Approve(ctx, p.Number, "LGTM"); err != nil {
		t.Fatal(err)
	}
	if fake.reviewBody["event"] != "APPROVE" {
		t.Fatalf("review sent %v", fake.reviewBody)
	}
	merged, err := f.MergePullRequest(ctx, p.Number, "promote")
	if err != nil {
		t.Fatal(err)
	}
	if !merged.Merged || merged.MergeCommit == "" {
		t.Fatalf("merged: %+v", merged)
	}
	if fake.mergeBody["merge_method"] != "merge" || fake.mergeBody["sha"] != p.HeadSHA {
		t.Fatalf("merge request body %v; want merge_method=merge sha=%s", fake.mergeBody, p.HeadSHA)
	}
}

// The race: our look finds nothing, another run creates the PR, our create
// gets GitHub's 422 "already exists" — the forge must return the open one.
func TestOpenRaceReturnsExisting(t *testing.T) {
	fake, srv := newFakeGitHub(t)
	ctx := context.Background()
	f, err := New(ctx, srv.URL, fakeToken, forge.Repo{Owner: "tug-gitops", Name: "tug"})
	if err != nil {
		t.Fatal(err)
	}
	n := forge.NewPullRequest{Head: "promote/x", Base: "main", Title: "t", Body: "b"}
	if _, _, err := f.OpenPullRequest(ctx, n); err != nil {
		t.Fatal(err)
	}
	// The next list misses it, as if it were created right after our look.
	fake.mu.Lock()
	fake.hideLists = 1
	fake.mu.Unlock()
	p, created, err := f.OpenPullRequest(ctx, n)
	if err != nil || created || p.Number != 1347 || fake.creates != 1 {
		t.Fatalf("after race: created=%v creates=%d %+v %v", created, fake.creates, p, err)
	}
}

func TestBadTokenNeverPrinted(t *testing.T) {
	_, srv := newFakeGitHub(t)
	_, err := New(context.Background(), srv.URL, "ghp_wrong_secret_value", forge.Repo{Owner: "tug-gitops", Name: "tug"})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want a 401", err)
	}
	if strings.Contains(err.Error(), "ghp_wrong_secret_value") {
		t.Fatal("the token appears in the error")
	}
}
