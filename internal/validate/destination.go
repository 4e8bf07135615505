package validate

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tug-gitops/tug/internal/config"
	"github.com/tug-gitops/tug/internal/repo"
)

func groupKindAll() metav1.GroupKind { return metav1.GroupKind{Group: "*", Kind: "*"} }

// checkDestination mirrors Argo CD's GetDestinationCluster and returns the
// resolved cluster, or nil when it would fail.
func (v *validator) checkDestination(app *repo.Application) *v1alpha1.Cluster {
	d := app.Spec.Destination
	switch {
	case d.Server != "" && d.Name != "":
		v.add(newFinding("destination.server-and-name", app.FieldPos("spec.destination"), "remove one of them; server is the stable choice",
			"Application %s: destination has both server %q and name %q", app.Describe(), d.Server, d.Name))
		return nil
	case d.Server == "" && d.Name == "":
		v.add(newFinding("destination.missing", app.FieldPos("spec.destination"), "add destination.server: "+config.InCluster.Server,
			"Application %s: destination has neither server nor name", app.Describe()))
		return nil
	case d.Server != "":
		if c, ok := v.clusterByServer(d.Server); ok {
			return &v1alpha1.Cluster{Name: c.Name, Server: c.Server}
		}
		v.add(newFinding("destination.unknown-server", app.ValuePos(v.r.Root, "spec.destination.server", d.Server), v.serverHint(d.Server),
			"Application %s: cluster %q not found (Argo CD matches the server URL exactly)", app.Describe(), d.Server))
		return nil
	}
	var matches []config.Cluster
	for _, c := range v.clusters {
		if c.Name == d.Name {
			matches = append(matches, c)
		}
	}
	if len(matches) == 1 {
		return &v1alpha1.Cluster{Name: matches[0].Name, Server: matches[0].Server}
	}
	hint := "declare the cluster in tug.yaml (clusters: [{name, server}]) or as an Argo CD cluster Secret"
	if s := v.nameSuggestion(d.Name); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
	}
	msg := "there are no clusters with this name"
	if len(matches) > 1 {
		msg = fmt.Sprintf("%d clusters have this name", len(matches))
	}
	v.add(newFinding("destination.unknown-name", app.ValuePos(v.r.Root, "spec.destination.name", d.Name), hint,
		"Application %s: destination name %q: %s", app.Describe(), d.Name, msg))
	return nil
}

// clusterByServer matches as Argo CD's db.GetCluster: trailing slashes trimmed, then exact.
func (v *validator) clusterByServer(server string) (config.Cluster, bool) {
	srv := strings.TrimRight(server, "/")
	for _, c := range v.clusters {
		if strings.TrimRight(c.Server, "/") == srv {
			return c, true
		}
	}
	return config.Cluster{}, false
}

// serverHint explains the usual mistakes: :443, http://, https//, a path, a typo.
func (v *validator) serverHint(server string) string {
	canon := canonicalServer(server)
	for _, c := range v.clusters {
		if canonicalServer(c.Server) == canon {
			return fmt.Sprintf("did you mean %s? Argo CD compares the URL as a string, so scheme, port and path must match exactly", c.Server)
		}
	}
	best, bestDist := "", 6
	for _, c := range v.clusters {
		if d := repo.EditDistance(server, c.Server); d < bestDist {
			best, bestDist = c.Server, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %s?", best)
	}
	return "declare the cluster in tug.yaml (clusters: [{name, server}]) or as an Argo CD cluster Secret, or use " + config.InCluster.Server
}

// canonicalServer reduces a URL to host without default port, scheme or path,
// only for hints (Argo CD itself never does this).
func canonicalServer(s string) string {
	s = strings.TrimSpace(strings.ToLower(s))
	for _, bad := range []string{"https//", "http//", "https:/", "http:/"} {
		if strings.HasPrefix(s, bad) && !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
			s = "https://" + strings.TrimPrefix(s, bad)
		}
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	host := u.Hostname()
	if p := u.Port(); p != "" && p != "443" && p != "80" {
		host += ":" + p
	}
	return host
}

func (v *validator) nameSuggestion(name string) string {
	best, bestDist := "", 3
	for _, c := range v.clusters {
		if d := repo.EditDistance(name, c.Name); d < bestDist {
			best, bestDist = c.Name, d
		}
	}
	return best
}
