// Command scheduler-plugins-scheduler is kube-scheduler with the Coscheduling plugin of
// sigs.k8s.io/scheduler-plugins, for the pytest-aiconformance lab, where it runs as a second
// scheduler (profile schedulerName scheduler-plugins-scheduler) beside the control plane's own.
//
// It is the lab's own entry point rather than upstream's cmd/scheduler, which links every plugin
// of the repository (Trimaran, NetworkAware, NodeResourceTopology...): the lab needs only
// Coscheduling, and the others cost build time and dependencies.  The plugin registration is
// upstream's, verbatim.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // for rest client metric registration
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"sigs.k8s.io/scheduler-plugins/pkg/coscheduling"

	// Ensure scheme package is initialized (CoschedulingArgs in the scheduler configuration).
	_ "sigs.k8s.io/scheduler-plugins/apis/config/scheme"
)

func main() {
	command := app.NewSchedulerCommand(
		app.WithPlugin(coscheduling.Name, coscheduling.New),
	)
	os.Exit(cli.Run(command))
}
