// Package version reports tug's own version and the versions of the
// third-party programs it pins.
package version

import "runtime/debug"

// Version is set at link time with -ldflags "-X github.com/tug-gitops/tug/internal/version.Version=…";
// otherwise it comes from the module's build info.
var Version = ""

// ArgoCD is the Argo CD release whose Go types, manifests and binaries tug pins.
const ArgoCD = "v3.2.11"

// Kubernetes is the version of the lab's control plane.
const Kubernetes = "v1.34.4"

// String returns tug's version, "(devel)" for an unstamped build.
func String() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}
