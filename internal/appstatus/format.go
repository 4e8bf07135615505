package appstatus

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints trees as a table, children indented under their parent,
// each condition on its own line below its app. Conditions are kept out of
// the aligned columns (a long message would otherwise widen NAME for every
// row): the rows are aligned first, then the condition lines inserted.
func WriteTable(w io.Writer, trees []*App) error {
	var rows bytes.Buffer
	tw := tabwriter.NewWriter(&rows, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSYNC\tHEALTH\tREVISION\tPROJECT")
	notes := [][]string{nil} // notes[i]: lines printed after row i
	var walk func(a *App, prefix, childPrefix string)
	walk = func(a *App, prefix, childPrefix string) {
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\n", prefix, a.Name, a.Sync, a.Health, revisionText(a), a.Project)
		var lines []string
		// An operation still going, or one that failed, is shown whatever
		// the sync status says: while it retries, Argo CD syncs nothing else.
		if op := a.Op; op != nil && op.Phase != "Succeeded" {
			lines = append(lines, childPrefix+"  ~ "+operationNote(a, op))
		}
		for _, c := range a.Conditions {
			lines = append(lines, fmt.Sprintf("%s  ! %s: %s", childPrefix, c.Type, oneLine(c.Message)))
		}
		notes = append(notes, lines)
		for i, c := range a.Children {
			if i == len(a.Children)-1 {
				walk(c, childPrefix+"└─ ", childPrefix+"   ")
			} else {
				walk(c, childPrefix+"├─ ", childPrefix+"│  ")
			}
		}
	}
	for _, t := range trees {
		walk(t, "", "")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var out strings.Builder
	for i, row := range strings.Split(strings.TrimSuffix(rows.String(), "\n"), "\n") {
		out.WriteString(strings.TrimRight(row, " ") + "\n")
		if i < len(notes) {
			for _, n := range notes[i] {
				out.WriteString(n + "\n")
			}
		}
	}
	_, err := io.WriteString(w, out.String())
	return err
}

func revisionText(a *App) string {
	if len(a.Revisions) > 0 {
		var s []string
		for _, r := range a.Revisions {
			s = append(s, ShortRevision(r))
		}
		return strings.Join(s, ",")
	}
	return ShortRevision(a.Revision)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// operationNote is the status line of an operation that is still going or
// failed, saying when it works on another revision than the app shows.
func operationNote(a *App, op *Op) string {
	note := op.Describe(200)
	if !op.Active() {
		return "last " + note
	}
	if a.Revision != "" && len(a.Revisions) == 0 && !op.Targets(a.Revision) {
		note += " (not " + ShortRevision(a.Revision) + ", the revision shown)"
	}
	return note
}
