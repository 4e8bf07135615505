// Package config reads tug.yaml, the small file at the root of a GitOps
// repository that tells tug what Argo CD itself would know from its cluster:
// the repository's own URL, the clusters Applications may target, and the
// environments promotion moves between.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// FileName is the config file's name at the repository root.
const FileName = "tug.yaml"

// InCluster is the cluster every Argo CD installation knows without a
// cluster Secret: the one Argo CD runs in.
var InCluster = Cluster{Name: "in-cluster", Server: "https://kubernetes.default.svc"}

// Config is the parsed tug.yaml.
type Config struct {
	// RepoURL is the repository's canonical URL; sources with this repoURL
	// are resolved against the working tree.
	RepoURL string `yaml:"repoURL"`
	// Clusters are the clusters Argo CD knows; in-cluster is always included.
	Clusters []Cluster `yaml:"clusters"`
	// Environments are promotion stages in order, e.g. [dev prod].
	Environments []string `yaml:"environments"`
}

// Cluster is a destination cluster Argo CD knows by name and server URL.
type Cluster struct {
	Name   string `yaml:"name"`
	Server string `yaml:"server"`
}

// Default is the config used when tug.yaml is absent.
func Default() *Config {
	return &Config{Clusters: []Cluster{InCluster}, Environments: []string{"dev", "prod"}}
}

// Load reads repoRoot/tug.yaml. A missing file yields Default(). Unknown
// keys and wrong types are errors that name the file and line.
func Load(repoRoot string) (*Config, error) {
	path := filepath.Join(repoRoot, FileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", FileName, err)
	}
	return Parse(data)
}

// Parse decodes tug.yaml content strictly and fills in defaults.
func Parse(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s:%s (keys are repoURL, clusters[].name, clusters[].server, environments)", FileName, yamlErrorText(err))
	}
	if err := c.fillDefaults(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) fillDefaults() error {
	hasInCluster := false
	for i, cl := range c.Clusters {
		if cl.Server == "" {
			return fmt.Errorf("%s: clusters[%d] (%q) has no server; add e.g. server: https://my-cluster.example.com", FileName, i, cl.Name)
		}
		if strings.TrimRight(cl.Server, "/") == InCluster.Server {
			hasInCluster = true
		}
	}
	if !hasInCluster {
		c.Clusters = append([]Cluster{InCluster}, c.Clusters...)
	}
	if len(c.Environments) == 0 {
		c.Environments = []string{"dev", "prod"}
	}
	return nil
}

// yamlErrorText turns yaml.v3's "yaml: line 3: …" into "3: …" so the caller's
// "tug.yaml:" prefix reads as file:line.
func yamlErrorText(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		parts := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			parts = append(parts, strings.TrimPrefix(e, "line "))
		}
		return strings.Join(parts, "; ")
	}
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "yaml: "), "line ")
}

// ErrorLine extracts the line number from an error returned by Load or
// Parse ("tug.yaml:7: …"), or 0 when it has none.
func ErrorLine(err error) int {
	var line int
	if err != nil {
		fmt.Sscanf(strings.TrimPrefix(err.Error(), FileName+":"), "%d", &line)
	}
	return line
}

// ClusterByServer finds a known cluster by server URL the way Argo CD does:
// exact string match after trimming trailing slashes.
func (c *Config) ClusterByServer(server string) (Cluster, bool) {
	srv := strings.TrimRight(server, "/")
	for _, cl := range c.Clusters {
		if strings.TrimRight(cl.Server, "/") == srv {
			return cl, true
		}
	}
	return Cluster{}, false
}

// ClustersByName returns every known cluster with that name (Argo CD refuses
// a name that matches more than one).
func (c *Config) ClustersByName(name string) []Cluster {
	var out []Cluster
	for _, cl := range c.Clusters {
		if cl.Name == name {
			out = append(out, cl)
		}
	}
	return out
}
