package repo

import (
	"strings"
	"testing"
)

// A YAML syntax error is reported at its line and column: where parsing
// failed, or where an unclosed construct begins, or at the last character
// when the file just stops.
func TestYAMLSyntaxErrorsHaveLineAndColumn(t *testing.T) {
	for _, tc := range []struct {
		in        string
		line, col int
		says      string
	}{
		{"apiVersion: v1\nkind: [\n", 2, 7, "the file ends here"},
		{"a: {b: 1\n", 1, 4, "flow mapping that starts here is not closed"},
		{"a: 'x\n", 1, 4, "quoted scalar that starts here is not closed"},
		{"a:\n  b: 1\n c: 2\n", 3, 2, "did not find expected key (while parsing a block mapping that starts at line 1, column 1)"},
		{"a: b: c\n", 1, 5, "mapping values are not allowed"},
		{"x: @foo\n", 1, 4, "cannot start any token"},
		{"k: v\n  bad: indent\n", 2, 6, "mapping values are not allowed"},
		{"a:\n\t- 1\n", 2, 1, "cannot start any token"},
		{"a: 1\n---\nb: {c: 1\n", 3, 4, "flow mapping"},
		{"ä: {ö: 1\n", 1, 4, "flow mapping"},
		{"x: *nope\n", 1, 4, "unknown anchor"},
	} {
		r := &Repo{}
		r.ParseFile("f.yaml", []byte(tc.in))
		if len(r.Problems) != 1 {
			t.Errorf("%q: %d problems %v, want 1", tc.in, len(r.Problems), r.Problems)
			continue
		}
		p := r.Problems[0]
		if p.Rule != "parse.yaml" || p.Pos.Line != tc.line || p.Pos.Column != tc.col || !strings.Contains(p.Message, tc.says) {
			t.Errorf("%q: %s %s %q, want parse.yaml at %d:%d saying %q", tc.in, p.Rule, p.Pos, p.Message, tc.line, tc.col, tc.says)
		}
	}
}
