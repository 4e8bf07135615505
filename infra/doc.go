// Package infra holds no code: it is the home of the tests that check the
// repository's Argo CD configuration with Argo CD's own Go types.
//
//   - gitops/: the Argo CD objects (AppProjects platform and shop, the
//     app-of-apps root, the frontend/backend Applications). gitops_test.go
//     decodes every document strictly and checks destinations, sync policy,
//     finalizers, projects, repo URL (tug.yaml) and chart paths.
//   - argocd/: Argo CD's own installation (vendored upstream install.yaml plus
//     hardening patches). argocd_test.go builds it with kustomize and checks
//     the hardening, and that the vendored file matches the module cache.
//
// Run with: go test ./infra/...
package infra
