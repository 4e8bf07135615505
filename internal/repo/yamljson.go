package repo

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxExpandedNodes caps how many YAML nodes one document may expand to once
// aliases are followed. A "billion laughs" document is a few hundred bytes
// that expands exponentially; yaml.v3 only guards its own Decode into Go
// values, and we convert from yaml.Node ourselves, so we count here.
const maxExpandedNodes = 1_000_000

var errTooLarge = errors.New("document expands to more than 1,000,000 YAML nodes through aliases (a YAML bomb?)")

// nodeToJSONValue converts a YAML node into the value encoding/json would
// produce, keeping YAML 1.2 core scalar types. Map keys must be scalars.
func nodeToJSONValue(n *yaml.Node) (any, error) {
	budget := maxExpandedNodes
	return convertNode(n, &budget, 0)
}

func convertNode(n *yaml.Node, budget *int, depth int) (any, error) {
	*budget--
	if *budget < 0 {
		return nil, errTooLarge
	}
	if depth > 200 {
		return nil, fmt.Errorf("line %d: nesting deeper than 200 levels", n.Line)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return convertNode(n.Content[0], budget, depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("line %d: unknown alias", n.Line)
		}
		return convertNode(n.Alias, budget, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convertNode(c, budget, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		return convertMapping(n, budget, depth)
	case yaml.ScalarNode:
		return convertScalar(n)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

func convertMapping(n *yaml.Node, budget *int, depth int) (any, error) {
	out := make(map[string]any, len(n.Content)/2)
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			if err := mergeInto(out, v, budget, depth); err != nil {
				return nil, err
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: mapping keys must be strings", k.Line)
		}
		if first, dup := seen[k.Value]; dup {
			return nil, fmt.Errorf("line %d: key %q already set at line %d (Kubernetes rejects duplicate keys)", k.Line, k.Value, first)
		}
		seen[k.Value] = k.Line
		val, err := convertNode(v, budget, depth+1)
		if err != nil {
			return nil, err
		}
		out[k.Value] = val
	}
	return out, nil
}

// mergeInto applies a YAML "<<" merge key: keys already set win.
func mergeInto(out map[string]any, v *yaml.Node, budget *int, depth int) error {
	val, err := convertNode(v, budget, depth+1)
	if err != nil {
		return err
	}
	maps := []any{val}
	if seq, ok := val.([]any); ok {
		maps = seq
	}
	for _, m := range maps {
		mm, ok := m.(map[string]any)
		if !ok {
			return fmt.Errorf("line %d: merge key << needs a mapping", v.Line)
		}
		for k, x := range mm {
			if _, set := out[k]; !set {
				out[k] = x
			}
		}
	}
	return nil
}

func convertScalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return b, nil
	case "!!int":
		if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
			return i, nil
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			return n.Value, nil
		}
		return f, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("line %d: %s is not a JSON number", n.Line, n.Value)
		}
		return f, nil
	default: // !!str, !!timestamp, !!binary and custom tags stay strings, as in sigs.k8s.io/yaml
		return n.Value, nil
	}
}

// lookup walks a mapping/sequence node along a JSON-style path such as
// "spec.sources[0].helm.valueFiles" and returns the deepest node reached and
// whether the whole path was found. For a mapping key it returns the key node
// so that the position points at the field name.
func lookup(n *yaml.Node, path string) (*yaml.Node, bool) {
	last, _, ok := lookupValue(n, path)
	return last, ok
}

// lookupValue is lookup that also returns the node the path names (a
// mapping key's value), nil unless the whole path was found.
func lookupValue(n *yaml.Node, path string) (*yaml.Node, *yaml.Node, bool) {
	if n == nil {
		return nil, nil, false
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	cur, last := n, n
	for _, seg := range splitPath(path) {
		for cur.Kind == yaml.AliasNode && cur.Alias != nil {
			cur = cur.Alias
		}
		if idx, ok := seg.index(); ok {
			if cur.Kind != yaml.SequenceNode || idx >= len(cur.Content) {
				return last, nil, false
			}
			cur = cur.Content[idx]
			last = cur
			continue
		}
		if cur.Kind != yaml.MappingNode {
			return last, nil, false
		}
		found := false
		for i := 0; i+1 < len(cur.Content); i += 2 {
			if cur.Content[i].Value == string(seg) {
				last, cur, found = cur.Content[i], cur.Content[i+1], true
				break
			}
		}
		if !found {
			return last, nil, false
		}
	}
	return last, cur, true
}

type pathSeg string

func (s pathSeg) index() (int, bool) {
	if !strings.HasPrefix(string(s), "[") {
		return 0, false
	}
	i, err := strconv.Atoi(strings.Trim(string(s), "[]"))
	return i, err == nil && i >= 0
}

// splitPath turns "a.b[2].c" into ["a" "b" "[2]" "c"].
func splitPath(path string) []pathSeg {
	var out []pathSeg
	for _, part := range strings.Split(path, ".") {
		for part != "" {
			open := strings.IndexByte(part, '[')
			switch {
			case open < 0:
				out = append(out, pathSeg(part))
				part = ""
			case open > 0:
				out = append(out, pathSeg(part[:open]))
				part = part[open:]
			default:
				end := strings.IndexByte(part, ']')
				if end < 0 {
					out = append(out, pathSeg(part))
					part = ""
					continue
				}
				out = append(out, pathSeg(part[:end+1]))
				part = part[end+1:]
			}
		}
	}
	return out
}
