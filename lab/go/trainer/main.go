// Command trainer-controller-manager runs Kubeflow Trainer's controllers and validating
// webhooks (github.com/kubeflow/trainer/v2) as a host process of the pytest-aiconformance lab.
//
// Upstream's cmd/trainer-controller-manager always starts a certificate rotator: it writes a
// Secret in its namespace, patches the caBundle of the ValidatingWebhookConfiguration and
// reads its serving certificate from a fixed /tmp path.  In the lab the webhook server listens
// on 127.0.0.1 with a certificate the lab issues, and the lab owns the webhook configuration
// (clientConfig.url), so this main wires the same controllers, runtimes and webhooks without
// the rotator.
package main

import (
	"flag"
	"fmt"
	"os"

	apiruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlpkg "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	jobsetv1alpha2 "sigs.k8s.io/jobset/api/jobset/v1alpha2"
	schedulerpluginsv1alpha1 "sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1"

	trainer "github.com/kubeflow/trainer/v2/pkg/apis/trainer/v1alpha1"
	"github.com/kubeflow/trainer/v2/pkg/controller"
	runtimecore "github.com/kubeflow/trainer/v2/pkg/runtime/core"
	"github.com/kubeflow/trainer/v2/pkg/webhooks"
)

func main() {
	probeAddr := flag.String("health-probe-bind-address", "127.0.0.1:8081",
		"address of the /healthz and /readyz endpoints")
	webhookHost := flag.String("webhook-host", "127.0.0.1", "address the webhook server binds")
	webhookPort := flag.Int("webhook-port", 9443, "port of the webhook server")
	certDir := flag.String("webhook-cert-dir", "",
		"directory holding the webhook server's tls.crt and tls.key")
	leaderElect := flag.Bool("leader-elect", false, "use leader election")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")
	if *certDir == "" {
		fail(log.Error, fmt.Errorf("--webhook-cert-dir is required"), "bad flags")
	}

	scheme := apiruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(trainer.AddToScheme(scheme))
	utilruntime.Must(jobsetv1alpha2.AddToScheme(scheme))
	utilruntime.Must(schedulerpluginsv1alpha1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme: scheme,
		// As upstream: the runtimes read objects of kinds that may not be registered.
		Client:                 client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: *probeAddr,
		LeaderElection:         *leaderElect,
		LeaderElectionID:       "trainer.kubeflow.org",
		WebhookServer: webhook.NewServer(webhook.Options{
			Host:    *webhookHost,
			Port:    *webhookPort,
			CertDir: *certDir,
		}),
	})
	if err != nil {
		fail(log.Error, err, "unable to create the manager")
	}
	ctx := ctrl.SetupSignalHandler()
	runtimes, err := runtimecore.New(ctx, mgr.GetClient(), mgr.GetFieldIndexer())
	if err != nil {
		fail(log.Error, err, "unable to initialize the training runtimes")
	}
	if name, err := controller.SetupControllers(mgr, runtimes, ctrlpkg.Options{}); err != nil {
		fail(log.Error, err, "unable to set up controller "+name)
	}
	if name, err := webhooks.Setup(mgr, runtimes); err != nil {
		fail(log.Error, err, "unable to set up webhook "+name)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		fail(log.Error, err, "unable to set up the health check")
	}
	// Ready once the webhook server serves: the lab's webhook configurations fail closed.
	if err := mgr.AddReadyzCheck("readyz", mgr.GetWebhookServer().StartedChecker()); err != nil {
		fail(log.Error, err, "unable to set up the ready check")
	}
	log.Info("starting manager")
	if err := mgr.Start(ctx); err != nil {
		fail(log.Error, err, "manager stopped")
	}
}

func fail(logError func(error, string, ...any), err error, msg string) {
	logError(err, msg)
	os.Exit(1)
}
