// Command coredns is CoreDNS with only the plugins the lab node's
// Corefile uses (internal/node's corefile): CoreDNS's documented way to
// choose plugins at compile time is a main package that imports the ones
// wanted and runs coremain. Upstream's own main imports all of them,
// whose cloud back ends (Route 53, Azure DNS, Cloud DNS, etcd and more)
// made up about 40 % of the files compiled for a program that runs none
// of them.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
