package appstatus

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints trees as a table, children indented under their parent,
// each condition on its own line below its app.
func WriteTable(w io.Writer, trees []*App) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSYNC\tHEALTH\tREVISION\tPROJECT")
	var walk func(a *App, prefix, childPrefix string)
	walk = func(a *App, prefix, childPrefix string) {
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\n", prefix, a.Name, a.Sync, a.Health, revisionText(a), a.Project)
		for _, c := range a.Conditions {
			fmt.Fprintf(tw, "%s  ! %s: %s\t\t\t\t\n", childPrefix, c.Type, oneLine(c.Message))
		}
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
	return tw.Flush()
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
