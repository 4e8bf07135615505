package yamledit

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func readFixture(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/values-prod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestSetChangesOnlyTheScalar proves byte for byte that everything but the
// scalar's own text — comments, alignment, blank lines, key order, other
// quoting, the missing final newline — is untouched.
func TestSetChangesOnlyTheScalar(t *testing.T) {
	orig := readFixture(t)
	cases := []struct {
		path, value, oldText, newText, old string
	}{
		{"image.tag", "0.2.0", `tag: "0.1.0"`, `tag: "0.2.0"`, "0.1.0"},
		{"sidecar.image.tag", "v1.3", `tag: 'v1.2'`, `tag: 'v1.3'`, "v1.2"},
		{"plain.tag", "1.5.0", "tag: 1.4.2", "tag: 1.5.0", "1.4.2"},
		// Plain 1.10 would read back as a float: it gets quoted.
		{"plain.tag", "1.10", "tag: 1.4.2", `tag: "1.10"`, "1.4.2"},
		// Escaping inside double quotes.
		{"image.tag", `a"b`, `tag: "0.1.0"`, `tag: "a\"b"`, "0.1.0"},
		// Single quote doubled inside single quotes.
		{"sidecar.image.tag", "it's", `tag: 'v1.2'`, `tag: 'it''s'`, "v1.2"},
		// Value after multi-byte characters on an earlier line and the last line.
		{"zz_last_key_without_newline", "false", "zz_last_key_without_newline: true", "zz_last_key_without_newline: false", "true"},
	}
	for _, c := range cases {
		t.Run(c.path+"="+c.value, func(t *testing.T) {
			out, old, err := Set(orig, c.path, c.value)
			if err != nil {
				t.Fatal(err)
			}
			if old != c.old {
				t.Errorf("old = %q, want %q", old, c.old)
			}
			if bytes.Count(orig, []byte(c.oldText)) != 1 {
				t.Fatalf("fixture must hold %q exactly once", c.oldText)
			}
			want := bytes.Replace(orig, []byte(c.oldText), []byte(c.newText), 1)
			if !bytes.Equal(out, want) {
				t.Fatalf("output differs beyond the scalar:\n--- got\n%s\n--- want\n%s", out, want)
			}
			got, err := Get(out, c.path)
			if err != nil || got.Value != c.value {
				t.Fatalf("read back %q (%v), want %q", got.Value, err, c.value)
			}
		})
	}
}

func TestSetAfterMultibyteOnSameLine(t *testing.T) {
	in := []byte("image: {note: \"café\", tag: \"0.1.0\"} # é\n")
	out, _, err := Set(in, "image.tag", "0.2.0")
	if err != nil {
		t.Fatal(err)
	}
	want := "image: {note: \"café\", tag: \"0.2.0\"} # é\n"
	if string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

func TestRefusals(t *testing.T) {
	orig := readFixture(t)
	cases := map[string]string{
		"image.missing":   "key image.missing not found",
		"image":           "is not a scalar",
		"anchors.copy":    "is an alias",
		"environment.foo": "is not a mapping",
	}
	for path, want := range cases {
		if _, _, err := Set(orig, path, "x"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Set(%s): err = %v, want %q", path, err, want)
		}
	}
	if _, _, err := Set(orig, "image.missing", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key: err = %v, want ErrNotFound", err)
	}
	if _, _, err := Set(orig, "image", "x"); errors.Is(err, ErrNotFound) {
		t.Errorf("a mapping is not a missing key: err = %v", err)
	}
	multi := []byte("a: 1\n---\na: 2\n")
	if _, _, err := Set(multi, "a", "3"); err == nil || !strings.Contains(err.Error(), "more than one YAML document") {
		t.Errorf("multi-document: err = %v", err)
	}
	block := []byte("a: |\n  x\n")
	if _, _, err := Set(block, "a", "3"); err == nil || !strings.Contains(err.Error(), "block scalar") {
		t.Errorf("block scalar: err = %v", err)
	}
	if _, _, err := Set(orig, "image.tag", "two\nlines"); err == nil {
		t.Error("multi-line value accepted")
	}
	// A value that cannot be a single-line plain or quoted scalar safely
	// is still written quoted, never breaking the structure.
	out, _, err := Set(orig, "plain.tag", "a: b #c")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`tag: "a: b #c"`)) {
		t.Fatalf("value with ': ' and ' #' not quoted:\n%s", out)
	}
}

func TestGet(t *testing.T) {
	s, err := Get(readFixture(t), "image.tag")
	if err != nil {
		t.Fatal(err)
	}
	if s.Value != "0.1.0" || s.Line != 13 || s.Tag != "!!str" {
		t.Fatalf("got %+v", s)
	}
}
