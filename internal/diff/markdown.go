package diff

import (
	"fmt"
	"io"
	"strings"
)

// Marker opens every Markdown rendering; the sticky pull-request comment
// is the one that contains it.
const Marker = "<!-- tug-diff -->"

// MaxComment is GitHub's limit on a comment body (65,536 characters).
const MaxComment = 65536

// MarkdownOptions tune WriteMarkdown.
type MarkdownOptions struct {
	// Limit is the most bytes written (0: MaxComment). Bytes are never
	// fewer than characters, so the text also fits a character limit.
	Limit int
	// Command is how a reader gets the whole diff, shown when cutting
	// (default "tug diff").
	Command string
}

// footerRoom is kept free for the note that says what was cut.
const footerRoom = 700

// WriteMarkdown writes the result for a pull-request comment: a summary
// table, the Applications affected by changes outside their own files, and
// one collapsible section per Application with its resources' diffs. When
// the whole text would pass the limit it is cut — table rows first kept,
// then diffs shortened to resource lists, then sections left out — and
// the end says what was cut and how to see everything.
func WriteMarkdown(w io.Writer, res *Result, o MarkdownOptions) error {
	_, err := io.WriteString(w, Markdown(res, o))
	return err
}

// Markdown is WriteMarkdown's text.
func Markdown(res *Result, o MarkdownOptions) string {
	if o.Limit <= 0 {
		o.Limit = MaxComment
	}
	if o.Command == "" {
		o.Command = "tug diff"
	}
	budget := o.Limit - footerRoom
	var b strings.Builder
	b.WriteString(Marker + "\n")
	fmt.Fprintf(&b, "### tug diff: %s\n\n", res.Summary())
	fmt.Fprintf(&b, "`%s` → `%s`\n\n", res.Base, res.Head)
	var cut cutCounts
	for i, p := range res.Problems {
		line := fmt.Sprintf("> **Warning:** %s\n", oneLine(p))
		if i >= 20 || b.Len()+len(line) > budget/8 {
			cut.problems = len(res.Problems) - i
			break
		}
		b.WriteString(line)
	}
	if len(res.Problems) > 0 {
		b.WriteString("\n")
	}
	if res.Empty() {
		b.WriteString("No Application changes.\n")
		return b.String()
	}
	writeTable(&b, res, budget/3, &cut)
	writeOutside(&b, res, budget/2, &cut)
	for i, a := range res.Apps {
		full := appSection(a, true)
		if b.Len()+len(full) <= budget {
			b.WriteString(full)
			continue
		}
		short := appSection(a, false)
		if b.Len()+len(short) <= budget {
			b.WriteString(short)
			cut.shortened++
			continue
		}
		cut.omitted = len(res.Apps) - i
		break
	}
	if cut.any() {
		b.WriteString(cut.note(o))
	}
	return b.String()
}

type cutCounts struct{ problems, rows, outside, shortened, omitted int }

func (c cutCounts) any() bool {
	return c.problems+c.rows+c.outside+c.shortened+c.omitted > 0
}

func (c cutCounts) note(o MarkdownOptions) string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(c.rows, "rows of the summary table")
	add(c.outside, "lines of the affected-Applications list")
	add(c.shortened, "Applications' diffs (their resources are listed)")
	add(c.omitted, "Applications' sections")
	add(c.problems, "warnings")
	return fmt.Sprintf("\n---\n**Cut to stay under the %d-character comment limit:** left out %s. Run `%s` for the whole diff.\n",
		o.Limit, strings.Join(parts, ", "), o.Command)
}

func writeTable(b *strings.Builder, res *Result, budget int, cut *cutCounts) {
	b.WriteString("| Application | Environment | Change | + added | ~ changed | − removed |\n|---|---|---|--:|--:|--:|\n")
	for i, a := range res.Apps {
		added, changed, removed := a.Counts()
		row := fmt.Sprintf("| %s | %s | %s | %d | %d | %d |\n", a.Name, a.Env, changeCell(a), added, changed, removed)
		if b.Len()+len(row) > budget {
			cut.rows = len(res.Apps) - i
			fmt.Fprintf(b, "| … %d more | | | | | |\n", cut.rows)
			break
		}
		b.WriteString(row)
	}
	b.WriteString("\n")
}

func changeCell(a *AppDiff) string {
	s := string(a.Change)
	if a.Error != "" {
		s += " ⚠️ render failed"
	}
	return s
}

func writeOutside(b *strings.Builder, res *Result, budget int, cut *cutCounts) {
	// Group Applications by the outside files that affect them, so a chart
	// change names dev and prod on one line.
	groups := map[string][]string{}
	var order []string
	for _, a := range res.Apps {
		if len(a.Outside) == 0 {
			continue
		}
		k := strings.Join(a.Outside, "`, `")
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], a.Name)
	}
	if len(order) == 0 {
		return
	}
	b.WriteString("**Affected by changes outside their own files** (shared values, charts, projects):\n\n")
	for i, k := range order {
		line := fmt.Sprintf("- %s: `%s`\n", strings.Join(groups[k], ", "), k)
		if b.Len()+len(line) > budget {
			cut.outside = len(order) - i
			break
		}
		b.WriteString(line)
	}
	b.WriteString("\n")
}

// AppSection is one Application's collapsible Markdown section with its
// resources' diffs, or, when that passes limit bytes, with the resources
// listed and a note to run command for the diffs. Promotion pull requests
// show their environment's change with it.
func AppSection(a *AppDiff, limit int, command string) string {
	if s := appSection(a, true); len(s) <= limit {
		return s
	}
	return appSection(a, false) + "Run `" + command + "` for the whole diff.\n"
}

// appSection is one Application's <details>; without diffs it lists the
// resources only.
func appSection(a *AppDiff, withDiffs bool) string {
	var b strings.Builder
	added, changed, removed := a.Counts()
	env := ""
	if a.Env != "" {
		env = " (" + a.Env + ")"
	}
	fmt.Fprintf(&b, "<details><summary><b>%s</b>%s — %s: +%d ~%d −%d</summary>\n\n", a.Name, env, a.Change, added, changed, removed)
	if a.Error != "" {
		fmt.Fprintf(&b, "**Render failed:** %s\n\n", oneLine(a.Error))
	}
	if a.BaseError != "" {
		fmt.Fprintf(&b, "Render failed at the base: %s\n\n", oneLine(a.BaseError))
	}
	if a.ProjectChanged {
		fmt.Fprintf(&b, "Its AppProject `%s` changed.\n\n", a.Project)
	}
	for _, n := range a.Notes {
		fmt.Fprintf(&b, "- %s\n", oneLine(n))
	}
	if !withDiffs {
		for _, r := range a.Resources {
			fmt.Fprintf(&b, "- %s `%s`\n", changeMark(r.Change), r.ResourceKey)
		}
		b.WriteString("\n(diff cut for length)\n")
	} else {
		for _, r := range a.Resources {
			fence := codeFence(r.Diff)
			fmt.Fprintf(&b, "%s `%s`\n%sdiff\n%s%s\n\n", changeMark(r.Change), r.ResourceKey, fence, r.Diff, fence)
		}
	}
	b.WriteString("</details>\n\n")
	return b.String()
}

// codeFence is a backtick fence longer than any backtick run in s, so a
// manifest holding ``` cannot close the block early.
func codeFence(s string) string {
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
