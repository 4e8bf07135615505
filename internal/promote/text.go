package promote

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/tug-gitops/tug/internal/diff"
)

// maxManifestDiff keeps PR bodies under forge limits (GitHub: 65536
// characters); a longer diff is cut with a note.
const maxManifestDiff = 50000

// branchName is KIND/APP-ENV-TAG with the tag made safe for a ref name.
func branchName(kind, app, env, tag string) string {
	return kind + "/" + app + "-" + env + "-" + refSafe(tag)
}

var refUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func refSafe(s string) string {
	s = refUnsafe.ReplaceAllString(s, "-")
	s = strings.ReplaceAll(s, "..", "-")
	return strings.Trim(s, ".-")
}

func title(o *Options, old, tag string) string {
	return fmt.Sprintf("Promote %s %s → %s: %s → %s", o.App, o.From, o.To, old, tag)
}

func commitMessage(o *Options, from, to envApp, tag, digest string) string {
	msg := fmt.Sprintf("promote %s %s → %s: %s → %s\n\n%s runs %s; this sets %s in %s (%s) from %s to %s.\n",
		o.App, o.From, o.To, to.Tag.Value, tag,
		from.Name(), tag, o.Key, to.ValueFile, to.Name(), to.Tag.Value, tag)
	if to.Digest != nil {
		msg += fmt.Sprintf("%s: %s.\n", o.DigestKey, orNone(digest))
	}
	return msg
}

func orNone(digest string) string {
	if digest == "" {
		return "none (deployed by tag)"
	}
	return digest
}

// prBody says what changes and why it is safe, with the rendered-manifest
// diff of the --to environment. The marker comment lets tools find
// promotion PRs.
func prBody(o *Options, res *Result, from, to envApp, tag, digest string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- tug-promote app=%s from=%s to=%s tag=%s -->\n", o.App, o.From, o.To, tag)
	fmt.Fprintf(&b, "Promote **%s** from **%s** to **%s**: `%s` → `%s`.\n\n", o.App, o.From, o.To, to.Tag.Value, tag)
	fmt.Fprintf(&b, "- Changes `%s` in `%s` (Application `%s`, chart `%s`).\n", o.Key, to.ValueFile, to.Name(), to.ChartPath)
	fmt.Fprintf(&b, "- Source: `%s` sets `%s` to `%s` in `%s`.\n", from.Name(), o.Key, from.Tag.Value, from.TagAt())
	if to.Digest != nil {
		fmt.Fprintf(&b, "- Image digest (`%s`): `%s` → `%s`.\n", o.DigestKey, orNone(to.digest()), orNone(digest))
	}
	fmt.Fprintf(&b, "- Health gate: %s\n", res.Gate)
	writeManifests(&b, res, o.To, "tug promote --dry-run")
	b.WriteString("\nOpened by `tug promote`.\n")
	return b.String()
}

// writeManifests writes the warnings and the rendered-manifest diff of env.
func writeManifests(b *strings.Builder, res *Result, env, dryRun string) {
	for _, w := range res.Warnings {
		fmt.Fprintf(b, "\n> **Warning:** %s\n", w)
	}
	b.WriteString("\nRendered manifests of " + env + " (before → after, as `tug diff` shows them):\n\n")
	switch {
	case res.RenderError != "":
		fmt.Fprintf(b, "Could not render the chart: %s\n", res.RenderError)
	case res.manifests == nil || len(res.manifests.Resources) == 0:
		b.WriteString("No change in the rendered manifests.\n")
	default:
		b.WriteString(diff.AppSection(res.manifests, maxManifestDiff, dryRun))
	}
}
