// Package validate checks a loaded GitOps repository offline the way Argo CD
// would check it after merge: Application specs, destinations, projects,
// sources rendered with Helm/Kustomize, rendered manifests against the
// Kubernetes schema, and conflicts across Applications.
package validate

import (
	"fmt"
	"sort"

	"github.com/tug-gitops/tug/internal/repo"
)

// Severity orders findings; errors fail validation, warnings fail with --strict.
type Severity int

const (
	Info Severity = iota
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return "info"
}

// MarshalText makes severities read as words in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Rule describes one check. IDs are stable: CI configs and SARIF baselines
// refer to them.
type Rule struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail"`
}

// Finding is one problem at one place.
type Finding struct {
	Rule     string        `json:"rule"`
	Severity Severity      `json:"severity"`
	Pos      repo.Position `json:"position"`
	Message  string        `json:"message"`
	Hint     string        `json:"hint,omitempty"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s: %s [%s]", f.Pos, f.Severity, f.Message, f.Rule)
}

// Rules lists every rule tug validate applies, in report order.
var Rules = []Rule{
	{"config.invalid", Error, "tug.yaml cannot be read", "tug.yaml has a syntax error, an unknown key or a cluster without a server. Validation continues with the defaults."},
	{"parse.file", Error, "a YAML file cannot be read", "The file is binary, larger than 4 MiB, a symlink loop or unreadable. tug never follows symlinked directories."},
	{"parse.yaml", Error, "invalid YAML", "YAML syntax errors (at the line and column where parsing failed, or where an unclosed quote, bracket or brace begins), duplicate keys, non-string keys, or documents that expand past 1,000,000 nodes through aliases (YAML bombs)."},
	{"parse.unreached", Info, "a file no Application reads does not parse", "A YAML file that mentions argoproj.io but holds {{ }} or {% %} template markers, outside every source Argo CD renders: most likely another tool's template. Files no Application reads and that hold no Argo CD object are not checked at all."},
	{"parse.schema", Error, "an Argo CD object does not match Argo CD's types", "Decoded strictly into Argo CD v3's own Go types: unknown or misspelled fields (selfheal instead of selfHeal), wrong types, missing metadata.name, spec.project, spec.source or repoURL, or an apiVersion other than argoproj.io/v1alpha1."},
	{"appset.generator-unsupported", Info, "an ApplicationSet generator cannot be expanded offline", "List, git (directories and files, from the working tree), cluster (tug.yaml clusters, cluster Secrets in the repository, in-cluster), matrix and merge generators are expanded with the ApplicationSet controller's own code. SCM provider, pull request, cluster decision resource and plugin generators ask a live service, and a git generator may read another repository: their Applications are not validated."},
	{"appset.render-failed", Error, "an ApplicationSet template does not render", "Argo CD's ApplicationSet generator or template code failed (a parameter the template uses is missing, a file a git files generator reads is not YAML/JSON, the template's AppProject is not declared)."},
	{"destination.missing", Error, "the destination has neither server nor name", "Argo CD rejects the Application with \"Destination server missing from app spec\"."},
	{"destination.server-and-name", Error, "the destination has both server and name", "Argo CD rejects an Application whose destination sets both; keep one."},
	{"destination.unknown-server", Error, "the destination server is not a known cluster", "Argo CD looks clusters up by exact server URL after trimming trailing slashes, so https://kubernetes.default.svc:443, http://…, a path or a typo is a different, unknown cluster. Known clusters: in-cluster, tug.yaml clusters and Argo CD cluster Secrets in the repo."},
	{"destination.unknown-name", Error, "the destination name is not a known cluster", "No cluster (in-cluster, tug.yaml, cluster Secrets) has that name, or more than one has."},
	{"project.missing", Error, "the Application's project does not exist", "The AppProject is not declared in the repository and is not \"default\"."},
	{"project.destination-denied", Error, "the project does not permit the destination", "Checked with Argo CD's AppProject.IsDestinationPermitted: glob patterns and \"!\" negations over server, name and namespace."},
	{"project.source-denied", Error, "the project does not permit the source repository", "Checked with Argo CD's AppProject.IsSourcePermitted against spec.sourceRepos."},
	{"project.kind-denied", Error, "the project does not permit a rendered resource's kind", "Checked with Argo CD's AppProject.IsResourcePermitted: cluster/namespace resource whitelists and blacklists, and the resource's own namespace as a destination."},
	{"source.external", Info, "a source lives outside this repository", "A source whose repoURL is not this repository is not rendered. This repository's URL is tug.yaml's repoURL, else the checkout's origin remote, else the repoURL of the sources whose paths exist here; URLs are compared with Argo CD's normalisation (case, .git suffix, scp-style)."},
	{"source.remote", Info, "a source needs the network", "Charts from Helm repositories and OCI registries, remote kustomize bases and components, helmCharts not vendored under the chart home, remote value files and chart dependencies missing from charts/ are downloaded by Argo CD. Validation opens no network connection, so what they would render is not checked; $ref value files of such charts are still checked. With --online they are fetched (charts, dependencies and value files into $XDG_CACHE_HOME/tug/charts, never into the checkout) and checked; a dependency whose repository is a helm repo name (@name, alias:name) or file:// stays source.remote."},
	{"source.helm-charts", Info, "a kustomization with helmCharts is not built without --enable-helm", "kustomize inflates helmCharts only with --enable-helm, which Argo CD passes when argocd-cm's kustomize.buildOptions has it. argocd-cm is not in this repository, so tug cannot tell: run tug validate --enable-helm to build such kustomizations as an Argo CD configured that way would."},
	{"source.helm-charts-disabled", Error, "a kustomization uses helmCharts but argocd-cm does not enable Helm", "The repository's argocd-cm sets kustomize.buildOptions without --enable-helm, so Argo CD's kustomize build fails with \"must specify --enable-helm\". Add --enable-helm to kustomize.buildOptions."},
	{"source.path-missing", Error, "the source path does not exist", "spec.source.path must be a directory in this repository's working tree."},
	{"source.refresh-paths", Warning, "Argo CD's manifest paths annotation misses a file the render reads", "With argocd.argoproj.io/manifest-generate-paths set, a push webhook refreshes an Application only when the pushed commits touch those paths, and Argo CD moves it to a commit that touches none of them from its manifest cache, without rendering: a change to a file outside them is not deployed until a hard refresh. Checked with Argo CD's own path matching (the paths of any of the Application's sources count, as for Argo CD) against every file Helm loads from the chart folder (what .helmignore leaves; less the value files only other Applications name; a template that reads one of those through .Files is not seen), the value files the Application names, and the files a directory or Kustomize source read."},
	{"source.values-missing", Error, "a Helm value file does not exist", "Every helm.valueFiles entry must exist relative to the chart (or $ref), unless ignoreMissingValueFiles is set. With --online, a remote (http/https) value file the server answers 404 or 410 to is this error too."},
	{"source.values-ref-unknown", Error, "a value file names a $ref no source declares", "helm.valueFiles entries starting with $name/ must name the ref of another source of the same Application; Argo CD fails the manifest generation otherwise."},
	{"source.render-failed", Error, "the source does not render", "Helm (SDK, client-only, with the Application's release name, namespace, values, value files and parameters), Kustomize (kustomize API, with argocd-cm's kustomize.buildOptions and the Application's spec.source.kustomize fields) or a plain directory failed."},
	{"manifest.schema", Error, "a rendered manifest does not match the Kubernetes schema", "Rendered objects are checked against the Kubernetes 1.34 OpenAPI schema embedded in client-go (unknown fields, wrong types); CRDs found in the repository are used for custom kinds."},
	{"manifest.unknown-kind", Warning, "a rendered manifest has a kind with no schema", "Neither Kubernetes 1.34 nor a CRD in the repository defines this apiVersion/kind; the sync would fail unless the cluster has the CRD."},
	{"apps.duplicate-name", Error, "two Applications have the same name in a namespace", "Argo CD keeps only one of them. Checked among the Applications one root deploys, and across roots only when they also target the same cluster and namespace (separate environment trees are built by separate Argo CD instances)."},
	{"apps.shared-resource", Error, "two Applications manage the same resource", "Both would sync the same group/kind/namespace/name on the same cluster and fight over it (SharedResourceWarning)."},
	{"apps.unreachable", Info, "an Application is not deployed by any root", "Applications are followed from the roots (Applications no other Application deploys, and --root files) through their rendered output; this one sits inside an app-of-apps source directory but is not rendered by it. It is still checked on its own."},
	{"apps.retry-no-refresh", Warning, "an automated Application retries a failed sync without refresh", "Argo CD retries a failed automated sync at the commit that failed (5 times from 5 s up to 3 min when syncPolicy.retry is not set) and starts no other sync meanwhile, so a fix or revert merged after a commit that fails at sync time waits minutes for the retries to run out. Fix: set syncPolicy.retry.refresh: true (Argo CD 3.2+) next to limit and backoff, so every retry syncs the branch's latest commit. retry.limit: 0 (no retries) is not reported."},
	{"apps.retry-default", Info, "an automated Application has no retry policy", "Without syncPolicy.retry Argo CD retries a failed automated sync with its defaults, at the commit that failed and without refresh. Info rather than a warning: it is what most repositories have, and the fix (retry with refresh: true) is a choice. Set syncPolicy.retry with limit, backoff and refresh: true."},
	{"image.digest-malformed", Error, "an image.digest is not a sha256 digest", "A value file an Application's Helm source reads sets image.digest to something other than \"\" or sha256: followed by 64 lowercase hex digits; the charts refuse to render it and a node could not pull it."},
	{"image.digest-conflict", Error, "two environments pin the same tag to different digests", "Applications whose value files give the same image.repository and image.tag with different image.digest values: a tag names one image, so one environment does not run what the tag was released as. tug promote copies tag and digest together; a new build gets a new tag."},
}

var ruleByID = func() map[string]Rule {
	m := make(map[string]Rule, len(Rules))
	for _, r := range Rules {
		m[r.ID] = r
	}
	return m
}()

// RuleByID returns the rule with that ID.
func RuleByID(id string) (Rule, bool) {
	r, ok := ruleByID[id]
	return r, ok
}

func newFinding(rule string, pos repo.Position, hint, format string, args ...any) Finding {
	sev := Error
	if r, ok := ruleByID[rule]; ok {
		sev = r.Severity
	}
	return Finding{Rule: rule, Severity: sev, Pos: pos, Message: fmt.Sprintf(format, args...), Hint: hint}
}

// SortFindings orders findings by file, line, column, rule.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Column != b.Pos.Column {
			return a.Pos.Column < b.Pos.Column
		}
		return a.Rule < b.Rule
	})
}
