package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tug-gitops/tug/apps/internal/serve"
)

// Config is the frontend's settings, from the environment the chart sets.
type Config struct {
	Version     string
	Environment string
	// BackendURL is the backend's base URL; in the cluster it is the
	// backend Service's name, which the backend chart sets to its release name.
	BackendURL string
	// BackendTimeout bounds one call to the backend, so a hung backend
	// delays the page by at most this long.
	BackendTimeout time.Duration
}

const (
	defaultBackendURL     = "http://backend:8080"
	defaultBackendTimeout = 2 * time.Second
	// maxInfoBytes caps what we read from the backend: /api/info is tiny,
	// and a runaway body must not eat the frontend's memory.
	maxInfoBytes = 64 << 10
)

func configFromEnv(getenv func(string) string) Config {
	cfg := Config{
		Version:        orDefault(serve.Version(getenv("APP_VERSION")), "unknown"),
		Environment:    orDefault(getenv("APP_ENV"), "unknown"),
		BackendURL:     strings.TrimRight(orDefault(getenv("BACKEND_URL"), defaultBackendURL), "/"),
		BackendTimeout: defaultBackendTimeout,
	}
	return cfg
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// BackendInfo is the part of the backend's GET /api/info the page shows.
type BackendInfo struct {
	Service     string `json:"service"`
	Version     string `json:"version"`
	Environment string `json:"environment"`
}

// fetchBackendInfo calls GET {baseURL}/api/info. Every failure — unreachable,
// timeout, non-200, wrong content, garbage JSON, missing version — is an
// error that says which, for the page and the log.
func fetchBackendInfo(ctx context.Context, client *http.Client, baseURL string) (BackendInfo, error) {
	var info BackendInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/info", nil)
	if err != nil {
		return info, fmt.Errorf("bad BACKEND_URL %q: %w", baseURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return info, fmt.Errorf("backend at %s did not answer in time", baseURL)
		}
		return info, fmt.Errorf("backend at %s unreachable: %w", baseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("backend at %s answered %s", baseURL, resp.Status)
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxInfoBytes))
	if err := dec.Decode(&info); err != nil {
		return info, fmt.Errorf("backend at %s sent a body that is not /api/info JSON: %w", baseURL, err)
	}
	if info.Version == "" {
		return info, fmt.Errorf("backend at %s sent /api/info without a version", baseURL)
	}
	return info, nil
}

// page is the data the index template renders.
type page struct {
	Version      string
	Environment  string
	Backend      BackendInfo
	BackendError string // empty when the backend answered
}

// indexTmpl is parsed once at start; html/template escapes everything the
// backend sends, so a hostile or broken backend cannot inject markup.
var indexTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>shop ({{.Environment}})</title></head>
<body>
<h1>shop</h1>
<table>
<tr><th>service</th><th>version</th><th>environment</th></tr>
<tr><td>frontend</td><td id="frontend-version">{{.Version}}</td><td>{{.Environment}}</td></tr>
{{- if .BackendError}}
<tr><td>backend</td><td id="backend-version" colspan="2">unreachable</td></tr>
</table>
<p id="backend-error" role="alert">The backend is unreachable: {{.BackendError}}</p>
{{- else}}
<tr><td>backend</td><td id="backend-version">{{.Backend.Version}}</td><td>{{.Backend.Environment}}</td></tr>
</table>
{{- end}}
</body>
</html>
`))

// newHandler returns the frontend's routes. log receives backend failures.
//
// When the backend is down the page still answers 200: the frontend itself
// works and the page says plainly that the backend is unreachable. A 502
// would make the whole page look broken to users and to uptime checks that
// are meant to watch the frontend.
func newHandler(cfg Config, client *http.Client, logf func(msg string, args ...any)) http.Handler {
	index := func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), cfg.BackendTimeout)
		defer cancel()
		p := page{Version: cfg.Version, Environment: cfg.Environment}
		info, err := fetchBackendInfo(ctx, client, cfg.BackendURL)
		if err != nil {
			logf("backend call failed", "error", err.Error())
			p.BackendError = err.Error()
		} else {
			p.Backend = info
		}
		var buf strings.Builder // render fully first so a template error is a clean 500
		if err := indexTmpl.Execute(&buf, p); err != nil {
			serve.WriteError(w, http.StatusInternalServerError, "rendering the page failed")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.WriteString(w, buf.String())
	}
	return serve.Router{
		"/":        index,
		"/healthz": serve.Healthz,
		"/readyz":  serve.Healthz,
	}
}
