package main

import (
	"net/http"

	"github.com/tug-gitops/tug/apps/internal/serve"
)

// Config is what the backend reports about itself. The Helm chart sets
// APP_VERSION from the image tag and APP_ENV from .Values.environment; a
// binary whose build stamped its version (serve.BuildVersion, as the
// lab's images do) reports that instead, so /api/info shows what really runs.
type Config struct {
	Version     string
	Environment string
}

// configFromEnv reads Config through getenv, with "unknown" for unset values
// so a misconfigured pod is visible rather than silently blank.
func configFromEnv(getenv func(string) string) Config {
	return Config{
		Version:     orUnknown(serve.Version(getenv("APP_VERSION"))),
		Environment: orUnknown(getenv("APP_ENV")),
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Info is the JSON body of GET /api/info.
type Info struct {
	Service     string `json:"service"`
	Version     string `json:"version"`
	Environment string `json:"environment"`
}

// newHandler returns the backend's routes; request logging is added by main.
func newHandler(cfg Config) http.Handler {
	info := Info{Service: "backend", Version: cfg.Version, Environment: cfg.Environment}
	return serve.Router{
		"/healthz": serve.Healthz,
		"/readyz":  serve.Healthz,
		"/api/info": func(w http.ResponseWriter, _ *http.Request) {
			serve.WriteJSON(w, http.StatusOK, info)
		},
	}
}
