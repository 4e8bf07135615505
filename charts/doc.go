// Package charts holds the shop's Helm charts (backend, frontend) and the
// tests that lint and render each chart for every environment in tug.yaml
// with the Helm SDK, the way Argo CD's repo-server renders them.
//
// The charts themselves are plain Helm charts; this Go package exists only
// so `go test ./charts/` checks them.
package charts
