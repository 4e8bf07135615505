package diff

import (
	"bytes"
	"path"
	"strings"
)

// loaderKinds are the top-level kinds repo.Load takes anything from for a
// diff: Argo CD's objects, argocd-cm (a ConfigMap) and cluster Secrets.
// Everything else (a vendored install's CustomResourceDefinitions,
// Deployments, RBAC…) it parses only to drop.
var loaderKinds = map[string]bool{
	"Application": true, "ApplicationSet": true, "AppProject": true,
	"ConfigMap": true, "Secret": true,
}

// loaderView returns data with every YAML document whose top-level kind
// the loader drops replaced by empty lines, so that line numbers in what
// it reports stay those of the file; changed is false when nothing was
// blanked. A document is blanked only when it has exactly one top-level
// "kind:" line (block style, column 0) naming another kind: anything
// else (flow style, JSON, no kind, a kind repeated) is kept as written.
//
// Parsing a vendored Argo CD install (1.5 MB, mostly CRD schemas) was
// most of a diff's CPU on this repository, twice (once per revision).
func loaderView(name string, data []byte) (view []byte, changed bool) {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
	default:
		return data, false
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	out := make([]byte, 0, len(data))
	start := 0
	flush := func(end int) {
		doc := lines[start:end]
		if (start > 0 && !bareMarker(lines[start-1])) || keepDoc(doc) {
			for _, l := range doc {
				out = append(out, l...)
			}
		} else {
			changed = true
			for _, l := range doc {
				switch {
				case bytes.HasPrefix(l, []byte("%")): // a directive of the next document
					out = append(out, l...)
				case bytes.HasSuffix(l, []byte("\n")):
					out = append(out, '\n')
				}
			}
		}
	}
	for i, l := range lines {
		if isDocMarker(l) {
			flush(i)
			out = append(out, l...)
			start = i + 1
		}
	}
	flush(len(lines))
	if !changed {
		return data, false
	}
	return out, true
}

// isDocMarker: a line "---" or "..." (optionally followed by a space and
// more), which YAML never reads as content at column 0.
func isDocMarker(l []byte) bool {
	l = bytes.TrimRight(l, "\r\n")
	for _, m := range []string{"---", "..."} {
		if bytes.Equal(l, []byte(m)) || bytes.HasPrefix(l, []byte(m+" ")) || bytes.HasPrefix(l, []byte(m+"\t")) {
			return true
		}
	}
	return false
}

// bareMarker: a document marker with nothing after it but a comment (a
// document that starts on its marker line is kept as written).
func bareMarker(l []byte) bool {
	rest := bytes.TrimSpace(l[3:])
	return len(rest) == 0 || rest[0] == '#'
}

func keepDoc(doc [][]byte) bool {
	kind, n := "", 0
	for _, l := range doc {
		rest, ok := bytes.CutPrefix(l, []byte("kind:"))
		if !ok {
			continue
		}
		n++
		v := string(rest)
		if i := strings.Index(v, " #"); i >= 0 {
			v = v[:i]
		}
		kind = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return n != 1 || kind == "" || loaderKinds[kind]
}
