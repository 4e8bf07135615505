package repo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	yaml4 "go.yaml.in/yaml/v4"
)

// yamlSyntaxError is where and why a file is not valid YAML.
type yamlSyntaxError struct {
	Line, Column int
	Message      string
}

// locateYAMLError finds a syntax error's line and column. yaml.v3, which
// the loader parses with, reports a line only (sometimes the line where the
// construct began, sometimes none). Its successor, go.yaml.in/yaml/v4, runs
// the same parser and reports the mark where parsing failed: on an error,
// the file is parsed again with it. When v4 cannot say (or disagrees that
// the file is broken), yaml.v3's own line and message stand.
func locateYAMLError(data []byte, v3err error) yamlSyntaxError {
	line, msg := yamlErrorLine(v3err)
	fallback := yamlSyntaxError{Line: line, Message: msg}
	le := v4LoadError(data)
	if le == nil || le.Mark.Line <= 0 {
		return fallback
	}
	hasContext := le.ContextMsg != "" && le.ContextMark.Line > 0 && le.ContextMark.Index < le.Mark.Index
	trimmed := bytes.TrimRight(data, " \t\r\n")
	end := utf8.RuneCount(trimmed) // marks count characters, not bytes
	switch {
	case le.Mark.Index < end && hasContext:
		return yamlSyntaxError{Line: le.Mark.Line, Column: le.Mark.Column,
			Message: fmt.Sprintf("%s (%s that starts at line %d, column %d)", le.Message, le.ContextMsg, le.ContextMark.Line, le.ContextMark.Column)}
	case le.Mark.Index < end:
		return yamlSyntaxError{Line: le.Mark.Line, Column: le.Mark.Column, Message: le.Message}
	case hasContext:
		// The file ended inside a construct (an unclosed quote, bracket or
		// brace): point at where that construct begins.
		return yamlSyntaxError{Line: le.ContextMark.Line, Column: le.ContextMark.Column,
			Message: fmt.Sprintf("%s (the %s that starts here is not closed before the end of the file)", le.Message, construct(le.ContextMsg))}
	case end > 0:
		// The file ended where more was expected: point at its last character.
		line, col := position(data, len(trimmed)-1)
		return yamlSyntaxError{Line: line, Column: col, Message: le.Message + " (the file ends here)"}
	}
	return fallback
}

// construct turns the parser's "while parsing a flow mapping" into "flow
// mapping".
func construct(context string) string {
	for _, prefix := range []string{"while parsing a ", "while parsing an ", "while scanning a ", "while scanning an "} {
		if rest, ok := strings.CutPrefix(context, prefix); ok {
			return rest
		}
	}
	return context
}

// position is the 1-based line and column (in characters, as the YAML
// parser counts them) of byte offset i in data.
func position(data []byte, i int) (line, col int) {
	start := bytes.LastIndexByte(data[:i], '\n') + 1
	return 1 + bytes.Count(data[:i], []byte{'\n'}), utf8.RuneCount(data[start:i]) + 1
}

// v4LoadError parses every document of data with yaml v4 and returns its
// first load error, if it is one with a position. A panic in the parser
// counts as no answer.
func v4LoadError(data []byte) (le *yaml4.LoadError) {
	defer func() {
		if recover() != nil {
			le = nil
		}
	}()
	dec := yaml4.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml4.Node
		err := dec.Decode(&n)
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		errors.As(err, &le)
		return le
	}
}
