package diff

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the result as indented JSON.
func WriteJSON(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// Summary is one line: how many Applications changed, were added, removed,
// or affected, out of how many.
func (r *Result) Summary() string {
	var added, removed, changed, affected int
	for _, a := range r.Apps {
		switch a.Change {
		case Added:
			added++
		case Removed:
			removed++
		case Changed:
			changed++
		case Affected:
			affected++
		}
	}
	s := fmt.Sprintf("%d changed, %d added, %d removed", changed, added, removed)
	if affected > 0 {
		s += fmt.Sprintf(", %d affected by a project change", affected)
	}
	return s + fmt.Sprintf(", %d unchanged", r.Unchanged)
}

const (
	ansiRed, ansiGreen, ansiCyan, ansiBold, ansiReset = "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[1m", "\x1b[0m"
)

// WriteText writes the result for a terminal; color adds ANSI colours (only
// ask for them when writing to a terminal).
func WriteText(w io.Writer, res *Result, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s → %s: %s\n", res.Base, res.Head, res.Summary())
	for _, p := range res.Problems {
		fmt.Fprintf(&b, "warning: %s\n", p)
	}
	for _, a := range res.Apps {
		added, changed, removed := a.Counts()
		fmt.Fprintf(&b, "\n%s %s", paint(ansiBold, a.Name), a.Change)
		if a.Env != "" {
			fmt.Fprintf(&b, " (%s)", a.Env)
		}
		fmt.Fprintf(&b, ": %d added, %d changed, %d removed\n", added, changed, removed)
		for _, e := range []struct{ label, msg string }{{"error", a.Error}, {"error at base", a.BaseError}} {
			if e.msg != "" {
				fmt.Fprintf(&b, "  %s: %s\n", paint(ansiRed, e.label), e.msg)
			}
		}
		for _, n := range a.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
		if len(a.Outside) > 0 {
			fmt.Fprintf(&b, "  affected by changes outside its own files: %s\n", strings.Join(a.Outside, ", "))
		}
		for _, r := range a.Resources {
			fmt.Fprintf(&b, "  %s %s\n", paint(changeColor(r.Change), changeMark(r.Change)), r.ResourceKey)
			for _, l := range strings.SplitAfter(r.Diff, "\n") {
				if l == "" {
					continue
				}
				fmt.Fprintf(&b, "    %s", paintLine(l, color))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func changeMark(c Change) string {
	switch c {
	case Added:
		return "+"
	case Removed:
		return "-"
	}
	return "~"
}

func changeColor(c Change) string {
	switch c {
	case Added:
		return ansiGreen
	case Removed:
		return ansiRed
	}
	return ansiCyan
}

func paintLine(l string, color bool) string {
	if !color {
		return l
	}
	body := strings.TrimSuffix(l, "\n")
	var code string
	switch {
	case strings.HasPrefix(body, "+++"), strings.HasPrefix(body, "---"):
		code = ansiBold
	case strings.HasPrefix(body, "@@"):
		code = ansiCyan
	case strings.HasPrefix(body, "+"):
		code = ansiGreen
	case strings.HasPrefix(body, "-"):
		code = ansiRed
	default:
		return l
	}
	return code + body + ansiReset + l[len(body):]
}
