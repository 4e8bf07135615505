// Package output is the -o flag of every tug command that prints data: one
// Format type, a flag value that accepts only the formats a command
// supports (anything else is a flag error, so the command exits 2 as for
// any misuse), and one writer that encodes the data as JSON or YAML or
// hands the stream to the command's own table or text printer.
//
// Helm's pkg/cli/output is the model: the package knows formats and
// encodings; binding the flag to a command (and its shell completion) is
// the CLI's job, in cmd/tug.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Format is an -o value.
type Format string

// The formats tug commands print. Table and Text are for people; the rest
// are for programs.
const (
	Table Format = "table"
	Text  Format = "text"
	JSON  Format = "json"
	YAML  Format = "yaml"
	// SARIF is validate's format for code-scanning tools; Write does not
	// know it, the command encodes it itself.
	SARIF Format = "sarif"
)

var descriptions = map[Format]string{
	Table: "aligned columns, for people",
	Text:  "plain text, for people",
	JSON:  "JSON, for programs (jq)",
	YAML:  "YAML, for programs",
	SARIF: "SARIF 2.1.0, for code-scanning tools",
}

// Description says in a few words what f is for (shell completion shows it).
func (f Format) Description() string { return descriptions[f] }

func (f Format) String() string { return string(f) }

// Human reports whether f is meant for people: a table or text, which the
// command prints itself.
func (f Format) Human() bool { return f == Table || f == Text }

// Write prints data in format f to w: JSON (indented) and YAML encode data,
// Table and Text call human. data is what a program reading -o json gets,
// so it should be the whole result, not a summary of it.
func (f Format) Write(w io.Writer, data any, human func(io.Writer) error) error {
	switch f {
	case JSON:
		return EncodeJSON(w, data)
	case YAML:
		return EncodeYAML(w, data)
	case Table, Text:
		if human == nil {
			return fmt.Errorf("output: no %s printer for %T", f, data)
		}
		return human(w)
	}
	return fmt.Errorf("output: format %q has no writer here", f)
}

// EncodeJSON writes v as indented JSON followed by a newline.
func EncodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// EncodeYAML writes v as YAML, through its JSON form so that the field
// names (json tags) are the same in both formats.
func EncodeYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// NewTable returns the tabwriter every tug table is aligned with; call
// Flush when done.
func NewTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// Value is an -o flag's value (a pflag.Value): it sets *Format and accepts
// only the allowed formats, the first of which is the default.
type Value struct {
	format  *Format
	allowed []Format
}

// DataFormats are the formats of a command that prints a table for people:
// the default when NewValue is given none.
var DataFormats = []Format{Table, JSON, YAML}

// NewValue sets *f to the default, allowed[0], and returns the flag value.
func NewValue(f *Format, allowed ...Format) *Value {
	if len(allowed) == 0 {
		allowed = DataFormats
	}
	*f = allowed[0]
	return &Value{format: f, allowed: allowed}
}

// Set accepts one of the allowed formats; the error lists them.
func (v *Value) Set(s string) error {
	for _, a := range v.allowed {
		if Format(s) == a {
			*v.format = a
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q: use %s", s, Join(v.allowed))
}

func (v *Value) String() string { return string(*v.format) }

// Type is what --help shows after the flag name.
func (v *Value) Type() string { return "format" }

// Allowed is the formats the flag accepts, the default first.
func (v *Value) Allowed() []Format { return v.allowed }

// Usage is the flag's help line, e.g. "output format: table, json or yaml".
func (v *Value) Usage() string { return "output format: " + Join(v.allowed) }

// Join lists formats as "a, b or c".
func Join(formats []Format) string {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
