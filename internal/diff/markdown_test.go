package diff

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// deployment is a rendered Deployment with one image, as a chart makes it.
func deployment(name, ns, image string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"app": name}},
		"spec": map[string]any{
			"replicas": int64(2),
			"template": map[string]any{"spec": map[string]any{"containers": []any{
				map[string]any{"name": "app", "image": image, "args": []any{"--port=8080", "--log=json", "--" + strings.Repeat("x", 200)}},
			}}},
		},
	}}
}

func renderedWith(name string, objs ...*unstructured.Unstructured) *RenderedApp {
	ra := &RenderedApp{Name: name, Env: "prod", Project: "p", Objects: map[ResourceKey]*unstructured.Unstructured{}}
	for _, o := range objs {
		ra.Objects[keyOf(o)] = o
	}
	return ra
}

// A change to 2,000 Applications: the comment stays under GitHub's limit,
// keeps its structure, and says what it cut.
func TestMarkdownOf2000AppsStaysUnderTheLimit(t *testing.T) {
	res := &Result{Base: Revision{Ref: "main", Commit: strings.Repeat("a", 40)}, Head: Revision{Ref: "working tree"}}
	for i := range 2000 {
		name := fmt.Sprintf("svc-%04d-prod", i)
		b := renderedWith(name, deployment(name, "ns", "img:1"))
		h := renderedWith(name, deployment(name, "ns", "img:2"))
		ad, err := CompareApp(b, h)
		if err != nil {
			t.Fatal(err)
		}
		ad.Outside = []string{"charts/shared/values.yaml"}
		res.Apps = append(res.Apps, ad)
	}
	md := Markdown(res, MarkdownOptions{Command: "tug diff main"})
	if n := utf8.RuneCountInString(md); n > MaxComment || len(md) > MaxComment {
		t.Fatalf("markdown is %d characters (%d bytes), over %d", n, len(md), MaxComment)
	}
	for _, want := range []string{Marker, "### tug diff: 2000 changed", "| svc-0000-prod | prod | changed | 0 | 1 | 0 |", "more |",
		"<details><summary><b>svc-0000-prod</b>", "**Cut to stay under the 65536-character comment limit:**", "Applications' sections", "Run `tug diff main`"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Count(md, "<details>") != strings.Count(md, "</details>") || strings.Count(md, "```")%2 != 0 {
		t.Errorf("a section or code block was cut in half")
	}
}

func TestMarkdownUncutWhenItFits(t *testing.T) {
	b := renderedWith("a-prod", deployment("a", "ns", "img:1"))
	h := renderedWith("a-prod", deployment("a", "ns", "img:2"))
	ad, err := CompareApp(b, h)
	if err != nil {
		t.Fatal(err)
	}
	md := Markdown(&Result{Apps: []*AppDiff{ad}}, MarkdownOptions{})
	if strings.Contains(md, "Cut to stay") || !strings.Contains(md, "-        image: img:1") || !strings.Contains(md, "+        image: img:2") {
		t.Fatalf("markdown:\n%s", md)
	}
}

// A manifest holding a code fence cannot end the diff block early.
func TestMarkdownFenceOutlastsBackticksInManifests(t *testing.T) {
	o := deployment("a", "ns", "img:1")
	h := deployment("a", "ns", "img:1")
	h.SetAnnotations(map[string]string{"doc": "```` inline fence"})
	ad, err := CompareApp(renderedWith("a", o), renderedWith("a", h))
	if err != nil {
		t.Fatal(err)
	}
	if md := Markdown(&Result{Apps: []*AppDiff{ad}}, MarkdownOptions{}); !strings.Contains(md, "`````diff\n") {
		t.Fatalf("fence not longer than the manifest's backticks:\n%s", md)
	}
}

func TestNoChangeMarkdownSaysSo(t *testing.T) {
	md := Markdown(&Result{Unchanged: 5}, MarkdownOptions{})
	if !strings.HasPrefix(md, Marker) || !strings.Contains(md, "No Application changes.") {
		t.Fatalf("markdown:\n%s", md)
	}
}
