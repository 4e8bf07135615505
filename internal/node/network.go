package node

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
)

// Network is the node's pod network: a bridge and a /24 of its own, both
// derived from the lab's name so two labs never pick the same ones.
type Network struct {
	Bridge  string     // link name, at most 15 bytes
	Subnet  *net.IPNet // the pods' /24
	Gateway net.IP     // the bridge's address: the node's IP, DNS and the kubelet's API
	// Table is the nftables table (family inet) holding the node's own
	// rules: pods may talk to each other and to the node, nothing else.
	Table string
}

// NetworkFor derives the network of lab name: bridge "tug-<hash>", a /24 in
// 10.240.0.0/13 (10.240–10.247; the fake node's pods use 10.200.0.0/16).
func NetworkFor(name string) Network {
	sum := sha256.Sum256([]byte(name))
	id := fmt.Sprintf("%x", sum[:4])
	second := 240 + int(sum[4]%8)
	third := int(sum[5])
	_, subnet, _ := net.ParseCIDR(fmt.Sprintf("10.%d.%d.0/24", second, third))
	return Network{
		Bridge:  "tug-" + id[:8],
		Subnet:  subnet,
		Gateway: net.IPv4(10, byte(second), byte(third), 1).To4(),
		Table:   "tug-" + id[:8],
	}
}

// CIDR is the gateway's address with the subnet's prefix ("10.241.7.1/24").
func (n Network) CIDR() string {
	ones, _ := n.Subnet.Mask.Size()
	return fmt.Sprintf("%s/%d", n.Gateway, ones)
}

// checkFree fails when the subnet overlaps a route or address the host has
// already (outside our own bridge), naming it: the pods would shadow it.
func (n Network) checkFree(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "ip", "-j", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	var routes []struct {
		Dst string `json:"dst"`
		Dev string `json:"dev"`
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dev == n.Bridge || r.Dst == "" || r.Dst == "default" {
			continue
		}
		dst := r.Dst
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		_, rn, err := net.ParseCIDR(dst)
		if err != nil {
			continue
		}
		if rn.Contains(n.Subnet.IP) || n.Subnet.Contains(rn.IP) {
			ones, _ := rn.Mask.Size()
			if ones == 0 {
				continue
			}
			return fmt.Errorf("the pod network %s overlaps the host's route to %s (dev %s); start the lab under another --name", n.Subnet, r.Dst, r.Dev)
		}
	}
	return nil
}
