package bootstrap

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const fileURL = "https://github.com/tug-gitops/tug.git"

func TestAdoptLiveKeepsTheLiveRootsURL(t *testing.T) {
	forge := "http://127.0.0.1:3000/tug-gitops/tug.git"
	for _, tc := range []struct {
		name     string
		flag     string
		live     live
		wantURL  string
		wantSay  string
		wantSkip bool
	}{
		{"fresh cluster: root.yaml's URL", "", live{}, "", "", false},
		{"live root at root.yaml's URL: nothing to say", "", live{rootRepoURL: fileURL}, "", "", false},
		{"live root elsewhere: kept, and said", "", live{rootRepoURL: forge}, forge, "kept from the live root Application", false},
		{"--repo-url wins, and says what it replaces", "https://mirror.example/tug.git", live{rootRepoURL: forge}, "https://mirror.example/tug.git", "the live root tracks " + forge, false},
		{"a lab: workloads skipped, URL kept", "", live{rootRepoURL: forge, lab: "default"}, forge, `Lab cluster (tug lab "default")`, true},
		{"a lab, workloads asked for", "", live{rootRepoURL: forge, lab: "default"}, forge, "kept from the live root", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{RepoURL: tc.flag, Workloads: strings.Contains(tc.name, "asked for")}
			var out bytes.Buffer
			adoptLive(&opts, tc.live, fileURL, &out)
			if opts.RepoURL != tc.wantURL {
				t.Errorf("RepoURL %q, want %q", opts.RepoURL, tc.wantURL)
			}
			if tc.wantSay == "" && out.Len() > 0 || !strings.Contains(out.String(), tc.wantSay) {
				t.Errorf("plan says %q, want %q", out.String(), tc.wantSay)
			}
			if got := opts.Exclude != nil; got != tc.wantSkip {
				t.Errorf("workloads skipped: %v, want %v", got, tc.wantSkip)
			}
			if opts.Lab != tc.live.lab {
				t.Errorf("Lab %q, want %q (the mark must be applied again, or server-side apply removes it)", opts.Lab, tc.live.lab)
			}
		})
	}
}

func TestTheLabMarksTheNamespace(t *testing.T) {
	install, _, err := Objects(Options{RepoRoot: repoRoot(t), Lab: "default"})
	if err != nil {
		t.Fatal(err)
	}
	ns := install[0]
	if ns.GetKind() != "Namespace" || ns.GetAnnotations()[LabAnnotation] != "default" {
		t.Fatalf("first install object %s %s, annotations %v", ns.GetKind(), ns.GetName(), ns.GetAnnotations())
	}
	plain, _, err := Objects(Options{RepoRoot: repoRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain[0].GetAnnotations()) != 0 {
		t.Errorf("a cluster that is no lab is marked: %v", plain[0].GetAnnotations())
	}
}

func TestSourceRepoURL(t *testing.T) {
	single := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"source": map[string]any{"repoURL": "a"}}}}
	multi := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"sources": []any{map[string]any{"chart": "x"}, map[string]any{"repoURL": "b"}}}}}
	if sourceRepoURL(single) != "a" || sourceRepoURL(multi) != "b" {
		t.Errorf("got %q and %q", sourceRepoURL(single), sourceRepoURL(multi))
	}
	root, err := RenderRoot(repoRoot(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := sourceRepoURL(rootApplication(root)); got != fileURL {
		t.Errorf("root.yaml's root tracks %q, want %q", got, fileURL)
	}
}
