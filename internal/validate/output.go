package validate

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/tug-gitops/tug/internal/version"
)

// WriteText prints findings grouped by file; colour only when color is true
// (the caller decides from whether stdout is a terminal).
func WriteText(w io.Writer, res *Result, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return "\x1b[" + code + "m" + s + "\x1b[0m"
	}
	sevColor := map[Severity]string{Error: "31", Warning: "33", Info: "36"}
	lastFile := ""
	for _, f := range res.Findings {
		if f.Pos.File != lastFile {
			if lastFile != "" {
				fmt.Fprintln(w)
			}
			fmt.Fprintln(w, paint("1", f.Pos.File))
			lastFile = f.Pos.File
		}
		loc := ""
		if f.Pos.Line > 0 {
			loc = fmt.Sprintf("%d:%d", f.Pos.Line, max(f.Pos.Column, 1))
		}
		fmt.Fprintf(w, "  %-7s %s %s %s\n", loc, paint(sevColor[f.Severity], fmt.Sprintf("%-7s", f.Severity)), f.Message, paint("2", "["+f.Rule+"]"))
		if f.Hint != "" {
			fmt.Fprintf(w, "          %s %s\n", paint("2", "hint:"), f.Hint)
		}
	}
	if lastFile != "" {
		fmt.Fprintln(w)
	}
	writeSummary(w, res)
	errs, warns := countSev(res, Error), countSev(res, Warning)
	_, err := fmt.Fprintf(w, "%d applications, %d projects checked: %d errors, %d warnings, %d info\n",
		res.Apps, res.Projects, errs, warns, len(res.Findings)-errs-warns)
	return err
}

// writeSummary says which repository this was taken to be and which roots
// were found, or that none were and how to name one.
func writeSummary(w io.Writer, res *Result) {
	switch {
	case res.RepoURL != "":
		fmt.Fprintf(w, "repository: %s (%s)\n", res.RepoURL, res.RepoURLSource)
	default:
		fmt.Fprintln(w, "repository: URL unknown (no tug.yaml repoURL, no origin remote): every source is taken to be this repository")
	}
	switch {
	case len(res.Roots) > 0:
		shown := res.Roots
		if len(shown) > 10 {
			shown = shown[:10]
		}
		more := ""
		if len(res.Roots) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(res.Roots)-len(shown))
		}
		fmt.Fprintf(w, "roots: %s%s\n", strings.Join(shown, ", "), more)
	case res.Apps == 0:
		fmt.Fprintln(w, "roots: none found, so nothing was checked. If the root Application is applied from outside this repository, name its file with --root FILE; Applications inside Helm templates or kustomizations are found only through a root that renders them.")
	}
}

func countSev(res *Result, s Severity) int {
	n := 0
	for _, f := range res.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// WriteJSON prints the result as one JSON document.
func WriteJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if res.Findings == nil {
		res.Findings = []Finding{}
	}
	return enc.Encode(res)
}

// WriteGitHub prints GitHub Actions workflow commands, which GitHub shows as
// annotations on the pull request's changed lines.
func WriteGitHub(w io.Writer, res *Result) error {
	for _, f := range res.Findings {
		level := map[Severity]string{Error: "error", Warning: "warning", Info: "notice"}[f.Severity]
		msg := f.Message
		if f.Hint != "" {
			msg += " (hint: " + f.Hint + ")"
		}
		props := "file=" + ghProp(f.Pos.File)
		if f.Pos.Line > 0 {
			props += fmt.Sprintf(",line=%d", f.Pos.Line)
		}
		if f.Pos.Column > 0 {
			props += fmt.Sprintf(",col=%d", f.Pos.Column)
		}
		props += ",title=" + ghProp("tug "+f.Rule)
		if _, err := fmt.Fprintf(w, "::%s %s::%s\n", level, props, ghData(msg)); err != nil {
			return err
		}
	}
	return nil
}

// ghData and ghProp escape as @actions/core does.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func ghProp(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// WriteSARIF prints SARIF 2.1.0 for code-scanning uploads.
func WriteSARIF(w io.Writer, res *Result) error {
	type msg struct {
		Text string `json:"text"`
	}
	type region struct {
		StartLine   int `json:"startLine,omitempty"`
		StartColumn int `json:"startColumn,omitempty"`
	}
	type artifact struct {
		URI       string `json:"uri"`
		URIBaseID string `json:"uriBaseId"`
	}
	type physical struct {
		ArtifactLocation artifact `json:"artifactLocation"`
		Region           *region  `json:"region,omitempty"`
	}
	type location struct {
		PhysicalLocation physical `json:"physicalLocation"`
	}
	type result struct {
		RuleID    string     `json:"ruleId"`
		RuleIndex int        `json:"ruleIndex"`
		Level     string     `json:"level"`
		Message   msg        `json:"message"`
		Locations []location `json:"locations"`
	}
	type rule struct {
		ID               string         `json:"id"`
		ShortDescription msg            `json:"shortDescription"`
		FullDescription  msg            `json:"fullDescription"`
		Default          map[string]any `json:"defaultConfiguration"`
	}
	levels := map[Severity]string{Error: "error", Warning: "warning", Info: "note"}
	var rules []rule
	index := map[string]int{}
	for i, r := range Rules {
		index[r.ID] = i
		rules = append(rules, rule{ID: r.ID, ShortDescription: msg{r.Summary}, FullDescription: msg{r.Detail},
			Default: map[string]any{"level": levels[r.Severity]}})
	}
	results := []result{}
	for _, f := range res.Findings {
		text := f.Message
		if f.Hint != "" {
			text += "\nHint: " + f.Hint
		}
		var reg *region
		if f.Pos.Line > 0 {
			reg = &region{StartLine: f.Pos.Line, StartColumn: f.Pos.Column}
		}
		results = append(results, result{RuleID: f.Rule, RuleIndex: index[f.Rule], Level: levels[f.Severity], Message: msg{text},
			Locations: []location{{PhysicalLocation: physical{ArtifactLocation: artifact{URI: f.Pos.File, URIBaseID: "%SRCROOT%"}, Region: reg}}}})
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "tug", "informationUri": "https://github.com/tug-gitops/tug", "version": version.String(), "rules": rules,
			}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// WriteRules prints --list-rules.
func WriteRules(w io.Writer) error {
	for _, r := range Rules {
		if _, err := fmt.Fprintf(w, "%-30s %-7s %s\n%32s%s\n\n", r.ID, r.Severity, r.Summary, "", r.Detail); err != nil {
			return err
		}
	}
	return nil
}
