// Command aiclab is the lab's multi-call control-plane binary.
//
// One binary keeps one link and one build cache; each component still runs as
// its own OS process (feature gates, klog flags and metric registries are
// process-global), chosen by the first argument or by the name it is called by.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

var components = []string{
	"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if !isComponent(name) {
		if len(os.Args) < 2 || !isComponent(os.Args[1]) {
			fmt.Fprintf(os.Stderr, "usage: %s {%s} [flags]\n", name, strings.Join(components, "|"))
			os.Exit(2)
		}
		name = os.Args[1]
		args = os.Args[1:]
	}
	// Each component parses os.Args itself (cobra, etcd's flag set).
	os.Args = args
	switch name {
	case "etcd":
		etcdmain.Main(os.Args)
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kubelet":
		os.Exit(cli.Run(kubelet.NewKubeletCommand(context.Background())))
	case "kube-proxy":
		os.Exit(cli.Run(proxy.NewProxyCommand()))
	}
}

func isComponent(name string) bool {
	for _, c := range components {
		if c == name {
			return true
		}
	}
	return false
}
