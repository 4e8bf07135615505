package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadMissingFileGivesDefaults(t *testing.T) {
	c, err := Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c.RepoURL != "" || len(c.Clusters) != 1 || c.Clusters[0] != InCluster {
		t.Fatalf("defaults: %+v", c)
	}
	if strings.Join(c.Environments, ",") != "dev,prod" {
		t.Fatalf("environments: %v", c.Environments)
	}
}

func TestLoadAddsInClusterAndKeepsDeclared(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "repoURL: https://example.com/r.git\nclusters:\n- name: east\n  server: https://east.example.com/\nenvironments: [dev, stage, prod]\n")
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.RepoURL != "https://example.com/r.git" || len(c.Clusters) != 2 || len(c.Environments) != 3 {
		t.Fatalf("got %+v", c)
	}
	if cl, ok := c.ClusterByServer("https://east.example.com"); !ok || cl.Name != "east" {
		t.Fatalf("trailing slash lookup failed: %v %v", cl, ok)
	}
	if _, ok := c.ClusterByServer("https://kubernetes.default.svc:443"); ok {
		t.Fatal(":443 must not match in-cluster (Argo CD matches exactly)")
	}
}

func TestLoadStrictWithLine(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "repoURL: x\nclusterz: []\n")
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "tug.yaml:2:") || !strings.Contains(err.Error(), "clusterz") {
		t.Fatalf("want tug.yaml:2 error naming clusterz, got %v", err)
	}
}

func TestLoadClusterWithoutServer(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "clusters:\n- name: east\n")
	if _, err := Load(dir); err == nil {
		t.Fatal("want error for cluster without server")
	}
}

func write(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
