package output

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

type result struct {
	Name  string `json:"name"`
	Count int    `json:"count,omitempty"`
}

func TestWriteEachFormat(t *testing.T) {
	data := result{Name: "backend-dev", Count: 2}
	human := func(w io.Writer) error {
		_, err := io.WriteString(w, "backend-dev has 2\n")
		return err
	}
	for _, tc := range []struct {
		f    Format
		want string
	}{
		{JSON, "{\n  \"name\": \"backend-dev\",\n  \"count\": 2\n}\n"},
		{YAML, "count: 2\nname: backend-dev\n"},
		{Table, "backend-dev has 2\n"},
		{Text, "backend-dev has 2\n"},
	} {
		var b bytes.Buffer
		if err := tc.f.Write(&b, data, human); err != nil {
			t.Fatalf("%s: %v", tc.f, err)
		}
		if b.String() != tc.want {
			t.Errorf("%s: got %q, want %q", tc.f, b.String(), tc.want)
		}
	}
}

func TestWriteRefusesWhatItCannotPrint(t *testing.T) {
	if err := Table.Write(io.Discard, result{}, nil); err == nil {
		t.Error("table without a printer: no error")
	}
	if err := SARIF.Write(io.Discard, result{}, nil); err == nil {
		t.Error("sarif through Write: no error (the command encodes it)")
	}
}

func TestValueAcceptsOnlyTheAllowedFormats(t *testing.T) {
	var f Format
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	v := NewValue(&f, Text, JSON, YAML)
	fs.VarP(v, "output", "o", v.Usage())
	if f != Text {
		t.Fatalf("default %q, want text", f)
	}
	if err := fs.Parse([]string{"-o", "yaml"}); err != nil || f != YAML {
		t.Fatalf("-o yaml: format %q, err %v", f, err)
	}
	err := fs.Parse([]string{"-o", "table"})
	if err == nil {
		t.Fatal("-o table accepted by a command that prints text")
	}
	if !strings.Contains(err.Error(), `unknown output format "table": use text, json or yaml`) {
		t.Errorf("error does not list the formats: %v", err)
	}
	if f != YAML {
		t.Errorf("a refused value changed the format to %q", f)
	}
	if got := v.Usage(); got != "output format: text, json or yaml" {
		t.Errorf("usage %q", got)
	}
}

func TestNewValueDefaultsToDataFormats(t *testing.T) {
	var f Format
	v := NewValue(&f)
	if f != Table || Join(v.Allowed()) != "table, json or yaml" {
		t.Errorf("default %q, allowed %s", f, Join(v.Allowed()))
	}
}

func TestEveryFormatIsDescribed(t *testing.T) {
	for _, f := range []Format{Table, Text, JSON, YAML, SARIF} {
		if f.Description() == "" {
			t.Errorf("%s has no description for shell completion", f)
		}
	}
}
