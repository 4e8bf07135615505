package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// HostSnapshot is what a real node may change on the host, for a
// before/after comparison: `lab down` must leave it as it found it.
type HostSnapshot struct {
	Links   []string          // network links
	Nft     string            // the whole nftables ruleset (iptables-nft's tables included)
	Sysctls map[string]string // Sysctls' values
	Mounts  []string          // mount points
	Cgroups []string          // the folders directly under each cgroup hierarchy
	Paths   []string          // FixedPaths that exist
}

// Snapshot reads the host's state. It never runs a legacy iptables
// command: listing a legacy table loads it into the kernel for good.
func Snapshot(ctx context.Context) (HostSnapshot, error) {
	var s HostSnapshot
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return s, err
	}
	for _, e := range ents {
		s.Links = append(s.Links, e.Name())
	}
	out, err := exec.CommandContext(ctx, "nft", "list", "ruleset").Output()
	if err != nil {
		return s, fmt.Errorf("nft list ruleset: %w", err)
	}
	s.Nft = string(out)
	s.Sysctls = map[string]string{}
	for _, k := range Sysctls {
		if v, err := readSysctl(k); err == nil {
			s.Sysctls[k] = v
		}
	}
	mounts, err := mountsUnder("/")
	if err != nil {
		return s, err
	}
	sort.Strings(mounts)
	s.Mounts = mounts
	hier, err := cgroupHierarchies()
	if err != nil {
		return s, err
	}
	for _, h := range hier {
		ents, _ := os.ReadDir(h)
		for _, e := range ents {
			if e.IsDir() {
				s.Cgroups = append(s.Cgroups, filepath.Join(h, e.Name()))
			}
		}
	}
	sort.Strings(s.Cgroups)
	for _, p := range FixedPaths {
		if _, err := os.Lstat(p); err == nil {
			s.Paths = append(s.Paths, p)
		}
	}
	return s, nil
}

// Diff lists how after differs from s, one line per difference.
func (s HostSnapshot) Diff(after HostSnapshot) []string {
	var d []string
	list := func(what string, a, b []string) {
		in := func(l []string, x string) bool {
			for _, y := range l {
				if y == x {
					return true
				}
			}
			return false
		}
		for _, x := range b {
			if !in(a, x) {
				d = append(d, fmt.Sprintf("%s added: %s", what, x))
			}
		}
		for _, x := range a {
			if !in(b, x) {
				d = append(d, fmt.Sprintf("%s removed: %s", what, x))
			}
		}
	}
	list("link", s.Links, after.Links)
	list("mount", s.Mounts, after.Mounts)
	list("cgroup", s.Cgroups, after.Cgroups)
	list("path", s.Paths, after.Paths)
	list("nftables line", strings.Split(s.Nft, "\n"), strings.Split(after.Nft, "\n"))
	for k, v := range s.Sysctls {
		if after.Sysctls[k] != v {
			d = append(d, fmt.Sprintf("sysctl %s: %s before, %s after", k, v, after.Sysctls[k]))
		}
	}
	return d
}
