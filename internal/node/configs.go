package node

import (
	"fmt"
	"strings"
)

// containerdConfig is containerd's configuration in version 4, the newest
// the pinned containerd (v2.4) documents and reads without migrating: the
// CRI plugin is split into io.containerd.cri.v1.images and
// io.containerd.cri.v1.runtime (version 3), and the gRPC and ttrpc
// listeners are the io.containerd.server.v1 plugins (version 4). It keeps
// every path containerd would otherwise put under /var/lib, /run, /opt or
// /etc in the node's folder (the shims' sockets in /run/containerd/s are
// fixed: the ledger records them), and sets what this kind of host needs
// (see docs/lab.md): restrict_oom_score_adj because root here may lack
// CAP_SYS_RESOURCE, and the sandbox image built locally, never pulled.
// runc and the CNI plugins are the ones built from lab/tools/runtime: runc
// by its path (BinaryName), the plugins in the node's cni/bin. NRI (a
// socket in /var/run/nri) and CDI (spec folders in /etc and /var/run) are
// off: the node uses neither.
func containerdConfig(dir, pauseRef, runc string) string {
	return fmt.Sprintf(`version = 4
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.nri.v1.nri"]
[plugins."io.containerd.server.v1.grpc"]
  address = %[3]q
[plugins."io.containerd.server.v1.ttrpc"]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %[6]q
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = %[10]q
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  cdi_spec_dirs = []
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = %[11]q
        Root = %[7]q
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%[8]q]
    conf_dir = %[9]q
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, dir+"/containerd/root", dir+"/containerd/state", dir+"/containerd.sock", dir+"/containerd.sock.ttrpc",
		dir+"/containerd/opt", pauseRef, dir+"/containerd/runc", dir+"/cni/bin", dir+"/cni/net.d", dir+"/containerd/certs.d", runc)
}

// hostsTOML sends pulls from host to mirror (containerd's hosts.toml:
// the mirror is tried first, "server" only if the mirror has not the
// image). The upstream stays the server so an image names its real home;
// containerd's proxy settings (Node.Containerd) make a pull that reaches
// it fail at once on loopback instead of leaving the machine.
func hostsTOML(host, mirror string) string {
	return fmt.Sprintf(`server = %q

[host.%q]
  capabilities = ["pull", "resolve"]
`, "https://"+host, mirror)
}

// cniConfig is a bridge on the node's own link and /24, without masquerade:
// pods reach each other and the node, and the node's nftables table drops
// whatever they send elsewhere.
func cniConfig(dir string, n Network) string {
	return fmt.Sprintf(`{"cniVersion":"0.4.0","name":%q,"plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,"hairpinMode":true,
  "ipam":{"type":"host-local","ranges":[[{"subnet":%q,"gateway":%q}]],
          "routes":[{"dst":"0.0.0.0/0"}],"dataDir":%q}}]}
`, n.Bridge, n.Bridge, n.Subnet.String(), n.Gateway.String(), dir+"/cni/ipam")
}

// kubeletConfig serves the kubelet's API on the bridge address only (the
// API server reaches it there by InternalIP), keeps everything else on
// loopback, puts the pods' cgroups under the node's own cgroup root, and
// leaves the host's iptables alone (makeIPTablesUtilChains: false).
type kubeletParams struct {
	Dir, CA, ServingCert, ServingKey, CgroupRoot string
	Net                                          Network
	HealthzPort                                  int
}

func kubeletConfig(p kubeletParams) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[2]d
cgroupDriver: cgroupfs
cgroupRoot: %[3]s
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
containerRuntimeEndpoint: unix://%[4]s/containerd.sock
imageServiceEndpoint: unix://%[4]s/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[5]s}
authorization: {mode: Webhook}
tlsCertFile: %[6]s
tlsPrivateKeyFile: %[7]s
resolvConf: %[4]s/kubelet/resolv.conf
clusterDomain: cluster.local
clusterDNS: [%[1]s]
podCIDR: %[8]s
podLogsDir: %[4]s/kubelet/pod-logs
volumePluginDir: %[4]s/kubelet/volume-plugins
serializeImagePulls: false
maxPods: 60
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "50Mi", "nodefs.available": "1%%", "imagefs.available": "1%%"}
syncFrequency: 10s
nodeStatusReportFrequency: 1m
enableDebuggingHandlers: true
`, p.Net.Gateway, p.HealthzPort, p.CgroupRoot, p.Dir, p.CA, p.ServingCert, p.ServingKey, p.Net.Subnet)
}

// kubeProxyConfig uses nftables (kube-proxy's own tables, nothing else),
// NodePorts on the bridge address only, and leaves the host's conntrack
// sysctls alone (zeros). Endpoint changes are applied within 100 ms: with
// the default minimum of 1 s between syncs, the third change of a rollout
// (the old pod terminating) waited up to a second, and new connections
// kept going to a pod that had been told to stop.
func kubeProxyConfig(kubeconfig, nodeName string, n Network, healthz, metrics int) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %s}
hostnameOverride: %s
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
clusterCIDR: %s
mode: nftables
nftables: {minSyncPeriod: 100ms}
nodePortAddresses: ["%s/32"]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, kubeconfig, nodeName, healthz, metrics, n.Subnet, n.Gateway)
}

// corefile answers for the cluster's names only, on the bridge address:
// no forward plugin, so no query ever leaves the machine.
func corefile(n Network, kubeconfig string, health, ready int) string {
	return fmt.Sprintf(`.:53 {
    bind %s
    errors
    health 127.0.0.1:%d
    ready 127.0.0.1:%d
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s lab
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
`, n.Gateway, health, ready, kubeconfig)
}

// nftRules is the node's own table: pods may reach each other, and the
// node only for DNS; nothing they send is forwarded to another interface,
// and nothing from another interface is forwarded to them.
func nftRules(n Network) string {
	b := n.Bridge
	return strings.NewReplacer("BR", b, "GW", n.Gateway.String(), "TABLE", n.Table).Replace(`table inet TABLE {
	chain forward {
		type filter hook forward priority -10; policy accept;
		iifname "BR" oifname != "BR" counter drop comment "pods never reach another interface"
		oifname "BR" iifname != "BR" counter drop comment "nothing from another interface reaches the pods"
	}
	chain input {
		type filter hook input priority -10; policy accept;
		iifname "BR" ct state established,related accept
		iifname "BR" ip daddr GW udp dport 53 accept
		iifname "BR" ip daddr GW tcp dport 53 accept
		iifname "BR" counter drop comment "pods reach the node for DNS only"
	}
}
`)
}
