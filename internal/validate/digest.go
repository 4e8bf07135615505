package validate

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/tug-gitops/tug/internal/apptree"
	"github.com/tug-gitops/tug/internal/repo"
	"github.com/tug-gitops/tug/internal/yamledit"
)

// digestRE is what image.digest must be: the sha256 digests registries
// and tug release produce.
var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// pinnedImage is the image an Application's Helm source deploys: the
// effective image.repository, image.tag and image.digest after its value
// files, and where the digest was set.
type pinnedImage struct {
	app             string
	repository, tag string
	digest          string
	digestPos       repo.Position
	hasDigest       bool
}

// checkImageDigests reports malformed image.digest values in the value
// files Applications read (image.digest-malformed) and environments that
// pin one repository:tag to different digests (image.digest-conflict).
func (v *validator) checkImageDigests(tree *apptree.Tree) {
	malformed := map[repo.Position]bool{}
	var images []pinnedImage
	for _, n := range tree.Nodes {
		for _, s := range n.Sources {
			if s.Kind != "helm" || s.Dir == "" {
				continue
			}
			img := pinnedImage{app: n.App.Name}
			for _, rel := range append([]string{path.Join(s.Dir, "values.yaml")}, s.ValueFiles...) {
				data, err := os.ReadFile(filepath.Join(v.r.Root, filepath.FromSlash(rel)))
				if err != nil {
					continue
				}
				if repoVal, ok := scalarAt(data, "image.repository"); ok {
					img.repository = repoVal.Value
				}
				if tag, ok := scalarAt(data, "image.tag"); ok {
					img.tag = tag.Value
				}
				d, ok := scalarAt(data, "image.digest")
				if !ok {
					continue
				}
				pos := repo.Position{File: rel, Line: d.Line, Column: d.Column}
				img.digest, img.digestPos, img.hasDigest = d.Value, pos, true
				if d.Value != "" && !digestRE.MatchString(d.Value) && !malformed[pos] {
					malformed[pos] = true
					v.add(newFinding("image.digest-malformed", pos,
						"write the digest the registry reports for the tag (tug release sets it), or \"\" to deploy by tag",
						"image.digest %q is not sha256: followed by 64 lowercase hex digits", d.Value))
				}
			}
			if img.repository != "" && img.tag != "" && img.hasDigest && digestRE.MatchString(img.digest) {
				images = append(images, img)
			}
		}
	}
	v.checkDigestConflicts(images)
}

// checkDigestConflicts reports each Application pinning a repository:tag
// to a digest another Application pins that same tag to differently: one
// of them does not run what the tag was released as.
func (v *validator) checkDigestConflicts(images []pinnedImage) {
	byRef := map[string][]pinnedImage{}
	for _, img := range images {
		ref := img.repository + ":" + img.tag
		byRef[ref] = append(byRef[ref], img)
	}
	reported := map[repo.Position]bool{}
	for ref, group := range byRef {
		for _, img := range group {
			var others []string
			seen := map[string]bool{}
			for _, o := range group {
				if o.digest != img.digest && !seen[o.digestPos.String()] {
					seen[o.digestPos.String()] = true
					others = append(others, fmt.Sprintf("%s pins %s (%s)", o.app, o.digest, o.digestPos))
				}
			}
			if len(others) == 0 || reported[img.digestPos] {
				continue
			}
			sort.Strings(others)
			reported[img.digestPos] = true
			v.add(newFinding("image.digest-conflict", img.digestPos,
				"a tag names one image: promote the digest with the tag (tug promote copies both), or release a new tag for the new build",
				"%s pins %s to %s, but %s", img.app, ref, img.digest, strings.Join(others, "; ")))
		}
	}
}

// scalarAt is the scalar at path, if the file sets one there.
func scalarAt(data []byte, key string) (yamledit.Scalar, bool) {
	s, err := yamledit.Get(data, key)
	return s, err == nil
}
