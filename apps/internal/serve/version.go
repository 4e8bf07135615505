package serve

// BuildVersion is the version stamped into the binary when its image is
// built (go build -ldflags "-X github.com/tug-gitops/tug/apps/internal/serve.BuildVersion=0.2.0").
// It says what a pod really runs; the chart's APP_VERSION only says what
// the chart asked for.
var BuildVersion string

// Version is the stamped build version, or configured (APP_VERSION) for a
// binary built without one (go run, tests).
func Version(configured string) string {
	if BuildVersion != "" {
		return BuildVersion
	}
	return configured
}
