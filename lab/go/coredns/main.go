// Command coredns is the lab's cluster DNS: CoreDNS with only the plugins the lab needs.
//
// Upstream's main links every plugin (cloud back ends included); this one answers
// cluster.local names from the Kubernetes API and nothing else: no forward plugin, so no
// query ever leaves the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives is the plugin order of upstream's plugin.cfg, restricted to the linked plugins.
var directives = []string{"bind", "ready", "health", "errors", "loadbalance", "cache", "kubernetes"}

func main() {
	dnsserver.Directives = directives
	coremain.Run()
}
