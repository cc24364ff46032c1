// Command keda-operator is KEDA v2.21.0's cmd/operator/main.go, copied unchanged but for
// this header, so the lab's binary has its own name (`go tool` would name it "operator", like
// the Prometheus Operator's); the lab runs it as a host process (pytest_aiconformance/lab/keda.py).
//
/*
Copyright 2021 The KEDA Authors

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"errors"
	"flag"
	"maps"
	"os"
	"time"

	"github.com/spf13/pflag"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apimachineryruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	eventingv1alpha1 "github.com/kedacore/keda/v2/apis/eventing/v1alpha1"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	eventingcontrollers "github.com/kedacore/keda/v2/controllers/eventing"
	kedacontrollers "github.com/kedacore/keda/v2/controllers/keda"
	"github.com/kedacore/keda/v2/pkg/certificates"
	"github.com/kedacore/keda/v2/pkg/eventemitter"
	"github.com/kedacore/keda/v2/pkg/k8s"
	"github.com/kedacore/keda/v2/pkg/metricscollector"
	"github.com/kedacore/keda/v2/pkg/metricsservice"
	"github.com/kedacore/keda/v2/pkg/scalers/authentication"
	"github.com/kedacore/keda/v2/pkg/scaling"
	"github.com/kedacore/keda/v2/pkg/scaling/resolver"
	kedautil "github.com/kedacore/keda/v2/pkg/util"
)

var (
	scheme   = apimachineryruntime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))

	utilruntime.Must(kedav1alpha1.AddToScheme(scheme))
	utilruntime.Must(eventingv1alpha1.AddToScheme(scheme))
	//+kubebuilder:scaffold:scheme
}

func main() {
	var enablePrometheusMetrics bool
	var enableOpenTelemetryMetrics bool
	var enableHighCardinalityLabels bool
	var metricsAddr string
	var probeAddr string
	var metricsServiceAddr string
	var profilingAddr string
	var enableLeaderElection bool
	var leaderElectionID string
	var adapterClientRequestQPS float32
	var adapterClientRequestBurst int
	var disableCompression bool
	var certSecretName string
	var certDir string
	var operatorServiceName string
	var metricsServerServiceName string
	var webhooksServiceName string
	var k8sClusterName string
	var k8sClusterDomain string
	var enableCertRotation bool
	var validatingWebhookName string
	var caDirs []string
	var enableWebhookPatching bool
	var enableAPIServicePatching bool
	var filePathAuthRootPath string
	var httpMaxIdleConns int
	var httpMaxIdleConnsPerHost int
	var httpIdleConnTimeout time.Duration
	var serviceAccountTokenMode string
	var vaultKubernetesAuthTokenFile string
	pflag.BoolVar(&enablePrometheusMetrics, "enable-prometheus-metrics", true, "Enable the prometheus metric of keda-operator.")
	pflag.BoolVar(&enableOpenTelemetryMetrics, "enable-opentelemetry-metrics", false, "Enable the opentelemetry metric of keda-operator.")
	pflag.BoolVar(&enableHighCardinalityLabels, "enable-high-cardinality-metrics-labels", false, "Enable high-cardinality labels for scaler HTTP request duration and external scaler gRPC client metrics.")
	pflag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "The address the prometheus metric endpoint binds to.")
	pflag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	pflag.StringVar(&metricsServiceAddr, "metrics-service-bind-address", ":9666", "The address the gRPRC Metrics Service endpoint binds to.")
	pflag.StringVar(&profilingAddr, "profiling-bind-address", "", "The address the profiling would be exposed on.")
	pflag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Enable leader election for controller manager. "+
			"Enabling this will ensure there is only one active controller manager.")
	pflag.StringVar(&leaderElectionID, "leader-election-id", "operator.keda.sh", "Leader election ID for the controller manager. Defaults to operator.keda.sh")
	pflag.Float32Var(&adapterClientRequestQPS, "kube-api-qps", 20.0, "Set the QPS rate for throttling requests sent to the apiserver")
	pflag.IntVar(&adapterClientRequestBurst, "kube-api-burst", 30, "Set the burst for throttling requests sent to the apiserver")
	pflag.BoolVar(&disableCompression, "disable-compression", true, "Disable response compression for k8s restAPI in client-go. ")
	pflag.StringVar(&certSecretName, "cert-secret-name", "kedaorg-certs", "KEDA certificates secret name. Defaults to kedaorg-certs")
	pflag.StringVar(&certDir, "cert-dir", "/certs", "Webhook certificates dir to use. Defaults to /certs")
	pflag.StringVar(&operatorServiceName, "operator-service-name", "keda-operator", "Operator service name. Defaults to keda-operator")
	pflag.StringVar(&metricsServerServiceName, "metrics-server-service-name", "keda-metrics-apiserver", "Metrics server service name. Defaults to keda-metrics-apiserver")
	pflag.StringVar(&webhooksServiceName, "webhooks-service-name", "keda-admission-webhooks", "Webhook service name. Defaults to keda-admission-webhooks")
	pflag.StringVar(&k8sClusterName, "k8s-cluster-name", "kubernetes-default", "k8s cluster name. Defaults to kubernetes-default")
	pflag.StringVar(&k8sClusterDomain, "k8s-cluster-domain", "cluster.local", "Kubernetes cluster domain. Defaults to cluster.local")
	pflag.BoolVar(&enableCertRotation, "enable-cert-rotation", false, "enable automatic generation and rotation of TLS certificates/keys")
	pflag.StringVar(&validatingWebhookName, "validating-webhook-name", "keda-admission", "ValidatingWebhookConfiguration name. Defaults to keda-admission")
	pflag.StringArrayVar(&caDirs, "ca-dir", []string{"/custom/ca"}, "Directory with CA certificates for scalers to authenticate TLS connections. Can be specified multiple times. Defaults to /custom/ca")
	pflag.BoolVar(&enableWebhookPatching, "enable-webhook-patching", true, "Enable patching of webhook resources. Defaults to true.")
	pflag.BoolVar(&enableAPIServicePatching, "enable-apiservice-patching", true, "Enable patching of APIService resources. Defaults to true.")
	pflag.StringVar(&filePathAuthRootPath, "filepath-auth-root-path", "", "Allowed filesystem path for KEDA to read auth from.")
	pflag.IntVar(&httpMaxIdleConns, "http-max-idle-conns", 0, "Maximum number of idle HTTP connections across all hosts. Zero means no limit.")
	pflag.IntVar(&httpMaxIdleConnsPerHost, "http-max-idle-conns-per-host", 1000, "Maximum number of idle HTTP connections to keep per host.")
	pflag.DurationVar(&httpIdleConnTimeout, "http-idle-conn-timeout", 90*time.Second, "Maximum time an idle HTTP connection remains in the pool. Must be greater than zero.")
	pflag.StringVar(&serviceAccountTokenMode, "service-account-token-mode", "enforce-audience", "Service account token mode for Vault file tokens and all boundServiceAccountToken minting: enforce-audience (default) or legacy (explicit insecure bypass). Legacy may expose Kubernetes API credentials and logs warnings at startup and on use.")
	pflag.StringVar(&vaultKubernetesAuthTokenFile, "vault-kubernetes-auth-token-file", resolver.DefaultVaultKubernetesAuthTokenFile, "Dedicated projected token for the operator's Vault Kubernetes login. The kubelet mints and rotates this token; KEDA needs no TokenRequest permission for this path.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)

	// Register klog flags on flag.CommandLine so they can be set programmatically.
	klog.InitFlags(nil)

	// Opt into the new klog behavior so that -stderrthreshold is honored even
	// when -logtostderr=true (the default). Without this, all log levels are
	// unconditionally sent to stderr and users cannot filter by severity.
	// Requires klog v2.140.0+ (kubernetes/klog#432).
	if err := flag.CommandLine.Set("legacy_stderr_threshold_behavior", "false"); err != nil {
		klog.Fatalf("Failed to set legacy_stderr_threshold_behavior: %v", err)
	}
	if err := flag.CommandLine.Set("stderrthreshold", "INFO"); err != nil {
		klog.Fatalf("Failed to set stderrthreshold: %v", err)
	}

	pflag.CommandLine.AddGoFlagSet(flag.CommandLine)
	pflag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	configureHTTPTransportOrDie(httpMaxIdleConns, httpMaxIdleConnsPerHost, httpIdleConnTimeout)

	ctx := ctrl.SetupSignalHandler()

	namespaces, err := kedautil.GetWatchNamespaces()
	if err != nil {
		setupLog.Error(err, "failed to get watch namespace")
		os.Exit(1)
	}

	byObject := buildWatchLabelSelectorByObjectOrDie()

	leaseDuration, err := kedautil.ResolveOsEnvDuration("KEDA_OPERATOR_LEADER_ELECTION_LEASE_DURATION")
	if err != nil {
		setupLog.Error(err, "invalid KEDA_OPERATOR_LEADER_ELECTION_LEASE_DURATION")
		os.Exit(1)
	}

	renewDeadline, err := kedautil.ResolveOsEnvDuration("KEDA_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE")
	if err != nil {
		setupLog.Error(err, "invalid KEDA_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE")
		os.Exit(1)
	}

	retryPeriod, err := kedautil.ResolveOsEnvDuration("KEDA_OPERATOR_LEADER_ELECTION_RETRY_PERIOD")
	if err != nil {
		setupLog.Error(err, "invalid KEDA_OPERATOR_LEADER_ELECTION_RETRY_PERIOD")
		os.Exit(1)
	}

	cfg := ctrl.GetConfigOrDie()
	resolverConfig := &resolver.Config{
		FilePathAuthRootPath:         filePathAuthRootPath,
		ServiceAccountTokenMode:      serviceAccountTokenMode,
		VaultKubernetesAuthTokenFile: vaultKubernetesAuthTokenFile,
	}
	configureAuthenticationPolicyOrDie(resolverConfig)

	cfg.QPS = adapterClientRequestQPS
	cfg.Burst = adapterClientRequestBurst
	cfg.DisableCompression = disableCompression

	if !enablePrometheusMetrics {
		metricsAddr = "0"
	}
	metricscollector.NewMetricsCollectors(metricscollector.Options{
		EnablePrometheusMetrics:     enablePrometheusMetrics,
		EnableOpenTelemetryMetrics:  enableOpenTelemetryMetrics,
		EnableHighCardinalityLabels: enableHighCardinalityLabels,
	})

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Metrics: server.Options{
			BindAddress: metricsAddr,
		},
		WebhookServer: webhook.NewServer(webhook.Options{
			Port: 9443,
		}),
		Cache: ctrlcache.Options{
			DefaultNamespaces: namespaces,
			DefaultTransform:  kedautil.CacheObjectTransform,
			ByObject:          byObject,
		},
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        profilingAddr,
		LeaderElection:          enableLeaderElection,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: kedautil.GetPodNamespace(),
		LeaseDuration:           leaseDuration,
		RenewDeadline:           renewDeadline,
		RetryPeriod:             retryPeriod,
	})
	if err != nil {
		setupLog.Error(err, "unable to start manager")
		os.Exit(1)
	}

	// default to 3 seconds if they don't pass the env var
	globalHTTPTimeoutMS, err := kedautil.ResolveOsEnvInt("KEDA_HTTP_DEFAULT_TIMEOUT", 3000)
	if err != nil {
		setupLog.Error(err, "invalid KEDA_HTTP_DEFAULT_TIMEOUT")
		os.Exit(1)
	}

	scaledObjectMaxReconciles, err := kedautil.ResolveOsEnvInt("KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES", 5)
	if err != nil {
		setupLog.Error(err, "invalid KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES")
		os.Exit(1)
	}

	scaledJobMaxReconciles, err := kedautil.ResolveOsEnvInt("KEDA_SCALEDJOB_CTRL_MAX_RECONCILES", 1)
	if err != nil {
		setupLog.Error(err, "invalid KEDA_SCALEDJOB_CTRL_MAX_RECONCILES")
		os.Exit(1)
	}

	_, err = kedautil.GetBoundServiceAccountTokenExpiry()
	if err != nil {
		setupLog.Error(err, "invalid "+kedautil.BoundServiceAccountTokenExpiryEnvVar)
		os.Exit(1)
	}

	globalHTTPTimeout := time.Duration(globalHTTPTimeoutMS) * time.Millisecond
	kubernetesAPITimeout, err := resolveKubernetesAPITimeout()
	if err != nil {
		setupLog.Error(err, "invalid KEDA_KUBERNETES_API_TIMEOUT")
		os.Exit(1)
	}
	eventRecorder := mgr.GetEventRecorder("keda-operator")

	kubeClientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		setupLog.Error(err, "Unable to create kube clientset")
		os.Exit(1)
	}
	objectNamespace, err := kedautil.GetClusterObjectNamespace()
	if err != nil {
		setupLog.Error(err, "Unable to get cluster object namespace")
		os.Exit(1)
	}
	// the namespaced kubeInformerFactory is used to restrict secret informer to only list/watch secrets in KEDA cluster object namespace,
	// refer to https://github.com/kedacore/keda/issues/3668
	kubeInformerFactory := kubeinformers.NewSharedInformerFactoryWithOptions(kubeClientset, 1*time.Hour, kubeinformers.WithNamespace(objectNamespace))
	secretInformer := kubeInformerFactory.Core().V1().Secrets()

	scaleClient, kubeVersion, err := k8s.InitScaleClient(mgr)
	if err != nil {
		setupLog.Error(err, "unable to init scale client")
		os.Exit(1)
	}

	authClientSet := &authentication.AuthClientSet{
		CoreV1Interface: kubeClientset.CoreV1(),
		SecretLister:    secretInformer.Lister(),
	}

	scaledHandler := scaling.NewScaleHandler(mgr.GetClient(), scaleClient, mgr.GetScheme(), globalHTTPTimeout, kubernetesAPITimeout, eventRecorder, authClientSet)
	eventEmitter := eventemitter.NewEventEmitter(mgr.GetClient(), eventRecorder, k8sClusterName, authClientSet)

	if err = (&kedacontrollers.ScaledObjectReconciler{
		Client:       mgr.GetClient(),
		Scheme:       mgr.GetScheme(),
		ScaleClient:  scaleClient,
		ScaleHandler: scaledHandler,
		EventEmitter: eventEmitter,
	}).SetupWithManager(mgr, controller.Options{
		MaxConcurrentReconciles: scaledObjectMaxReconciles,
	}); err != nil {
		setupLog.Error(err, "unable to create controller", "controller", "ScaledObject")
		os.Exit(1)
	}
	if err = (&kedacontrollers.ScaledJobReconciler{
		Client:               mgr.GetClient(),
		Scheme:               mgr.GetScheme(),
		GlobalHTTPTimeout:    globalHTTPTimeout,
		KubernetesAPITimeout: kubernetesAPITimeout,
		EventEmitter:         eventEmitter,
		AuthClientSet:        authClientSet,
	}).SetupWithManager(mgr, controller.Options{
		MaxConcurrentReconciles: scaledJobMaxReconciles,
	}); err != nil {
		setupLog.Error(err, "unable to create controller", "controller", "ScaledJob")
		os.Exit(1)
	}
	if err = (&kedacontrollers.TriggerAuthenticationReconciler{
		Client:       mgr.GetClient(),
		EventHandler: eventEmitter,
	}).SetupWithManager(mgr); err != nil {
		setupLog.Error(err, "unable to create controller", "controller", "TriggerAuthentication")
		os.Exit(1)
	}
	if err = (&kedacontrollers.ClusterTriggerAuthenticationReconciler{
		Client:       mgr.GetClient(),
		EventHandler: eventEmitter,
	}).SetupWithManager(mgr); err != nil {
		setupLog.Error(err, "unable to create controller", "controller", "ClusterTriggerAuthentication")
		os.Exit(1)
	}
	if err = (eventingcontrollers.NewCloudEventSourceReconciler(
		mgr.GetClient(),
		eventEmitter,
	)).SetupWithManager(mgr); err != nil {
		setupLog.Error(err, "unable to create controller", "controller", "CloudEventSource")
		os.Exit(1)
	}
	if err = (eventingcontrollers.NewClusterCloudEventSourceReconciler(
		mgr.GetClient(),
		eventEmitter,
	)).SetupWithManager(mgr); err != nil {
		setupLog.Error(err, "unable to create controller", "controller", "ClusterCloudEventSource")
		os.Exit(1)
	}
	//+kubebuilder:scaffold:builder

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up ready check")
		os.Exit(1)
	}

	certReady := make(chan struct{})
	if enableCertRotation {
		certManager := certificates.CertManager{
			SecretName:               certSecretName,
			CertDir:                  certDir,
			OperatorService:          operatorServiceName,
			MetricsServerService:     metricsServerServiceName,
			WebhookService:           webhooksServiceName,
			K8sClusterDomain:         k8sClusterDomain,
			CAName:                   "KEDA",
			CAOrganization:           "KEDAORG",
			ValidatingWebhookName:    validatingWebhookName,
			APIServiceName:           "v1beta1.external.metrics.k8s.io",
			Logger:                   setupLog,
			Ready:                    certReady,
			EnableWebhookPatching:    enableWebhookPatching,
			EnableAPIServicePatching: enableAPIServicePatching,
		}
		if err := certManager.AddCertificateRotation(ctx, mgr); err != nil {
			setupLog.Error(err, "unable to set up cert rotation")
			os.Exit(1)
		}
	} else {
		close(certReady)
	}

	kedautil.SetCACertDirs(caDirs)

	grpcServer := metricsservice.NewGrpcServer(&scaledHandler, metricsServiceAddr, certDir, certReady)
	if err := mgr.Add(&grpcServer); err != nil {
		setupLog.Error(err, "unable to set up Metrics Service gRPC server")
		os.Exit(1)
	}

	kedautil.PrintWelcome(setupLog, kubeVersion, "manager")

	kubeInformerFactory.Start(ctx.Done())

	if ok := cache.WaitForCacheSync(ctx.Done(), secretInformer.Informer().HasSynced); !ok {
		setupLog.Error(nil, "failed to wait Secrets cache synced")
		os.Exit(1)
	}

	if err := mgr.Start(ctx); err != nil {
		setupLog.Error(err, "problem running manager")
		os.Exit(1)
	}
}

func resolveKubernetesAPITimeout() (time.Duration, error) {
	timeoutValue, err := kedautil.ResolveOsEnvDuration("KEDA_KUBERNETES_API_TIMEOUT")
	if err != nil {
		return 0, err
	}
	if timeoutValue == nil {
		return 0, nil
	}
	if *timeoutValue < 0 {
		return 0, errors.New("must not be negative")
	}

	return *timeoutValue, nil
}

func configureHTTPTransportOrDie(maxIdleConns, maxIdleConnsPerHost int, idleConnTimeout time.Duration) {
	if err := kedautil.ConfigureHTTPTransport(kedautil.HTTPTransportConfig{
		MaxIdleConns:        maxIdleConns,
		MaxIdleConnsPerHost: maxIdleConnsPerHost,
		IdleConnTimeout:     idleConnTimeout,
	}); err != nil {
		setupLog.Error(err, "invalid HTTP transport configuration")
		os.Exit(1)
	}
}

// buildWatchLabelSelectorByObjectOrDie composes the cache.ByObject filters for
// both WATCH_LABEL_SELECTOR (SO/SJ/HPA) and WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH
// (TA/CTA). Returning nil means no filter is applied at the cache level.
//
// The two selectors are independent so a cluster-scoped CTA can be shared
// across operators scoped to different WATCH_LABEL_SELECTOR values.
//
// Follows the fail-fast pattern of ctrl.GetConfigOrDie() used elsewhere in
// main: malformed env vars exit the process at startup rather than propagate.
func buildWatchLabelSelectorByObjectOrDie() map[client.Object]ctrlcache.ByObject {
	byObject, err := kedautil.WatchLabelSelectorByObject(
		&kedav1alpha1.ScaledObject{},
		&kedav1alpha1.ScaledJob{},
		&autoscalingv2.HorizontalPodAutoscaler{},
	)
	if err != nil {
		setupLog.Error(err, "failed to parse WATCH_LABEL_SELECTOR")
		os.Exit(1)
	}
	taByObject, err := kedautil.WatchLabelSelectorForTriggerAuthByObject(
		&kedav1alpha1.TriggerAuthentication{},
		&kedav1alpha1.ClusterTriggerAuthentication{},
	)
	if err != nil {
		setupLog.Error(err, "failed to parse WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH")
		os.Exit(1)
	}
	if byObject == nil {
		return taByObject
	}
	maps.Copy(byObject, taByObject)
	return byObject
}

func configureAuthenticationPolicyOrDie(config *resolver.Config) {
	if err := config.LoadServiceAccountTokenAudiences(os.Getenv(resolver.ServiceAccountTokenAudiencesEnvVar)); err != nil {
		setupLog.Error(err, "invalid service account token policy")
		os.Exit(1)
	}
	if err := config.LoadOutboundFilter(os.Getenv(resolver.OutboundFilterEnvVar)); err != nil {
		setupLog.Error(err, "invalid authentication policy")
		os.Exit(1)
	}
	resolver.SetConfig(config)
	if config.IsLegacyServiceAccountTokenMode() {
		setupLog.Info("Warning: legacy service account token mode explicitly disables audience enforcement for Vault and boundServiceAccountToken authentication; Kubernetes API credentials may be sent to tenant-controlled destinations. Configure approved audiences and restore --service-account-token-mode=enforce-audience. Each legacy Vault login and token mint logs a warning")
	}
	if config.IsWarnOutboundPolicy() {
		setupLog.Info("Warning: outbound filter mode warn allows tenant-selected Vault addresses outside the allowlist and logs a warning for each violation. Configure KEDA_OUTBOUND_FILTER.hashiCorpVault with mode enforce and trusted allowedEndpoints to restrict destinations")
	} else if config.OutboundEndpointPolicy == "off" {
		setupLog.Info("Outbound filter mode off allows tenant-selected Vault addresses without destination restrictions; allowedEndpoints is ignored. Configure KEDA_OUTBOUND_FILTER.hashiCorpVault with mode enforce and trusted allowedEndpoints to restrict destinations")
	}
}
