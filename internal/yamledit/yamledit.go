// Package yamledit reads and changes one scalar in a YAML file without
// disturbing anything else: comments, key order, indentation, quoting and
// blank lines stay byte for byte. It locates the scalar through yaml.v3's
// node tree (never by regular expression) and splices the new text into the
// original bytes at the node's line and column, because re-encoding a
// yaml.v3 tree reformats the whole file.
package yamledit

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Scalar is a located scalar value.
type Scalar struct {
	Value  string
	Line   int // 1-based
	Column int // 1-based, in characters as yaml.v3 counts them
	Style  yaml.Style
	Tag    string // resolved tag, e.g. "!!str"
}

// Get returns the scalar at the dotted path (e.g. "image.tag") of the single
// YAML document in data. Keys containing dots cannot be addressed.
func Get(data []byte, path string) (Scalar, error) {
	n, err := find(data, path)
	if err != nil {
		return Scalar{}, err
	}
	return Scalar{Value: n.Value, Line: n.Line, Column: n.Column, Style: n.Style, Tag: n.ShortTag()}, nil
}

// Set returns data with the scalar at path replaced by value, and the old
// value. Only the scalar's own bytes change; its quoting style is kept
// unless the new value would then read as another type (e.g. plain 1.10
// becoming a float), in which case it is double-quoted. The result is parsed
// again to prove the new value reads back exactly.
func Set(data []byte, path, value string) (out []byte, old string, err error) {
	n, err := find(data, path)
	if err != nil {
		return nil, "", err
	}
	if strings.ContainsAny(value, "\n\r") {
		return nil, "", fmt.Errorf("%s: new value must be a single line", path)
	}
	start, end, err := scalarSpan(data, n)
	if err != nil {
		return nil, "", fmt.Errorf("%s at line %d: %w", path, n.Line, err)
	}
	text := render(value, n.Style)
	out = splice(data, start, end, text)
	back, err := find(out, path)
	if err != nil || back.Value != value || back.ShortTag() != n.ShortTag() {
		// Plain style changed the type (or could not hold the value): quote it.
		out = splice(data, start, end, render(value, yaml.DoubleQuotedStyle))
		back, err = find(out, path)
		if err != nil || back.Value != value || back.ShortTag() != "!!str" {
			return nil, "", fmt.Errorf("%s at line %d: cannot write %q without changing the file's structure", path, n.Line, value)
		}
	}
	return out, n.Value, nil
}

// ErrNotFound is what Get and Set return (errors.Is) when a key of the
// path is missing.
var ErrNotFound = errors.New("key not found")

type notFound string

func (e notFound) Error() string        { return string(e) }
func (e notFound) Is(target error) bool { return target == ErrNotFound }

// find parses data and walks the mapping keys of path to a scalar node.
func find(data []byte, path string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errors.New("file holds more than one YAML document; a values file has exactly one")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("empty YAML document")
	}
	n := doc.Content[0]
	walked := make([]string, 0, 4)
	for _, key := range strings.Split(path, ".") {
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s (line %d) is not a mapping, so it has no key %q", strings.Join(walked, "."), n.Line, key)
		}
		next := mappingValue(n, key)
		walked = append(walked, key)
		if next == nil {
			return nil, notFound(fmt.Sprintf("key %s not found (the mapping starts at line %d)", strings.Join(walked, "."), n.Line))
		}
		n = next
	}
	switch {
	case n.Kind == yaml.AliasNode:
		return nil, fmt.Errorf("%s (line %d) is an alias; editing it would change the anchored value elsewhere", path, n.Line)
	case n.Kind != yaml.ScalarNode:
		return nil, fmt.Errorf("%s (line %d) is not a scalar", path, n.Line)
	case n.ShortTag() == "!!null" && n.Value == "":
		return nil, fmt.Errorf("%s (line %d) has no value; write one by hand first", path, n.Line)
	case n.Anchor != "":
		return nil, fmt.Errorf("%s (line %d) carries anchor &%s; edit it by hand", path, n.Line, n.Anchor)
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return nil, fmt.Errorf("%s (line %d) is a block scalar; only single-line values can be edited", path, n.Line)
	case n.Style&yaml.TaggedStyle != 0:
		return nil, fmt.Errorf("%s (line %d) has an explicit tag; edit it by hand", path, n.Line)
	}
	return n, nil
}

// mappingValue returns the value for key; the last one wins, like yaml.v3's
// decoder into a map (duplicate keys are rejected there, but be safe).
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	var v *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			v = m.Content[i+1]
		}
	}
	return v
}

// scalarSpan returns the byte range [start, end) of the scalar's source
// text, quotes included, and checks it is all on its line.
func scalarSpan(data []byte, n *yaml.Node) (int, int, error) {
	lineStart, ok := lineOffset(data, n.Line)
	if !ok {
		return 0, 0, fmt.Errorf("line %d is past the end of the file", n.Line)
	}
	lineEnd := bytes.IndexByte(data[lineStart:], '\n')
	if lineEnd < 0 {
		lineEnd = len(data)
	} else {
		lineEnd += lineStart
	}
	line := data[lineStart:lineEnd]
	// yaml.v3 columns count characters, not bytes.
	col := 0
	for i := 1; i < n.Column; i++ {
		if col >= len(line) {
			return 0, 0, fmt.Errorf("column %d is past the end of the line", n.Column)
		}
		_, size := utf8.DecodeRune(line[col:])
		col += size
	}
	rest := line[col:]
	var length int
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		length = quotedLength(rest, '"')
	case n.Style&yaml.SingleQuotedStyle != 0:
		length = quotedLength(rest, '\'')
	default:
		// A plain scalar has no escapes; its text is its value.
		if bytes.HasPrefix(rest, []byte(n.Value)) {
			length = len(n.Value)
		} else {
			length = -1
		}
	}
	if length < 0 {
		return 0, 0, errors.New("the value spans several lines or is not where the parser says; edit it by hand")
	}
	return lineStart + col, lineStart + col + length, nil
}

// quotedLength is the length of the quoted scalar at the start of s,
// quotes included, or -1 when it does not close on this line.
func quotedLength(s []byte, q byte) int {
	if len(s) == 0 || s[0] != q {
		return -1
	}
	for i := 1; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++ // skip the escaped character
		case s[i] == q && q == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++ // '' is an escaped single quote
		case s[i] == q:
			return i + 1
		}
	}
	return -1
}

func lineOffset(data []byte, line int) (int, bool) {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return 0, false
		}
		off += i + 1
	}
	return off, true
}

// render writes value in the given scalar style.
func render(value string, style yaml.Style) string {
	switch {
	case style&yaml.DoubleQuotedStyle != 0:
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\t", `\t`)
		return `"` + r.Replace(value) + `"`
	case style&yaml.SingleQuotedStyle != 0:
		return "'" + strings.ReplaceAll(value, "'", "''") + "'"
	}
	return value
}

func splice(data []byte, start, end int, text string) []byte {
	out := make([]byte, 0, len(data)-(end-start)+len(text))
	out = append(out, data[:start]...)
	out = append(out, text...)
	return append(out, data[end:]...)
}
