package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// Every command with -o shares one flag: a format it does not print is
// misuse (exit 2) before anything is read or contacted, and the message
// lists the formats it does print.
func TestBadOutputFormatIsMisuse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status"}, "table, json or yaml"},
		{[]string{"wait", "--all"}, "text, json or yaml"},
		{[]string{"verify", "drift", "backend-dev"}, "table, json or yaml"},
		{[]string{"bootstrap"}, "text, json or yaml"},
		{[]string{"promote", "backend"}, "text, json or yaml"},
		{[]string{"validate", "../../internal/validate/testdata/bad/ok"}, "text, json or sarif"},
	} {
		var stdout, stderr bytes.Buffer
		args := append(tc.args, "-o", "xml")
		if code := runWith(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("tug %v: exit %d, want %d; stderr: %s", args, code, exitUsage, stderr.String())
		}
		if !strings.Contains(stderr.String(), `unknown output format "xml": use `+tc.want) {
			t.Errorf("tug %v: stderr does not list %q: %s", args, tc.want, stderr.String())
		}
		if stdout.Len() > 0 {
			t.Errorf("tug %v wrote to stdout on misuse: %s", args, stdout.String())
		}
	}
}

// Shell completion of -o offers exactly the command's formats.
func TestOutputFlagCompletes(t *testing.T) {
	for _, tc := range []struct {
		cmd  []string
		want []string
	}{
		{[]string{"status"}, []string{"table", "json", "yaml"}},
		{[]string{"wait"}, []string{"text", "json", "yaml"}},
		{[]string{"validate"}, []string{"text", "json", "sarif"}},
	} {
		var stdout bytes.Buffer
		args := append(append([]string{"__complete"}, tc.cmd...), "-o", "")
		if code := runWith(args, &stdout, new(bytes.Buffer)); code != exitOK {
			t.Fatalf("tug %v: exit %d", args, code)
		}
		var got []string
		for _, line := range strings.Split(stdout.String(), "\n") {
			if line == "" || strings.HasPrefix(line, ":") {
				continue // the directive line
			}
			got = append(got, strings.SplitN(line, "\t", 2)[0])
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("tug %v completes %q, want %q (output %q)", tc.cmd, got, tc.want, stdout.String())
		}
	}
}

// Commands write to the streams they are given, so they can be tested.
func TestValidateWritesToTheCommandsStream(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := runWith([]string{"validate", "-o", "json", "../../internal/validate/testdata/bad/dest-port-443"}, &stdout, &stderr)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitFailure, stderr.String())
	}
	var res struct {
		Findings []struct {
			Rule string `json:"rule"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || len(res.Findings) == 0 {
		t.Fatalf("stdout is not validate's JSON with findings (%v): %q", err, stdout.String())
	}
}
