// Command manager runs the chatbackend operator: it reconciles ChatBackend
// resources into a running, monitored chat-apiserver.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers"
	"github.com/chatbackend/chatbackend/internal/version"
)

// defaultImageRepository is where the release images are published; the
// operator's default API image is this repository at the operator's own
// version, so an operator upgrade rolls the API forward (after migrating).
const defaultImageRepository = "ghcr.io/chatbackend/chatbackend"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		metricsAddr, probeAddr, defaultImage string
		leaderElectionNamespace              string
		leaderElect                          bool
		monitoringRecheck                    time.Duration
		monitoringLabels                     map[string]string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the operator's /metrics endpoint binds to; 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one of several replicas reconciles.")
	flag.StringVar(&leaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease; the operator's own namespace when running in a cluster.")
	flag.StringVar(&defaultImage, "default-apiserver-image", defaultImageRepository+":"+version.Version,
		"chat-apiserver image of ChatBackends that set no spec.image.")
	flag.DurationVar(&monitoringRecheck, "monitoring-recheck-interval", controllers.DefaultMonitoringRecheckInterval,
		"How often a ChatBackend looks again for the prometheus-operator CRDs while they are missing.")
	flag.Func("monitoring-labels", "Labels k=v,... put on every ServiceMonitor and PrometheusRule, so that Prometheus selects them "+
		"(kube-prometheus-stack: release=<its release name>); spec.monitoring.*.labels add to and override them.",
		func(v string) (err error) { monitoringLabels, err = labels.ConvertSelectorToLabelsMap(v); return err })
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	if defaultImage == "" {
		return fmt.Errorf("--default-apiserver-image must not be empty")
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(chatv1alpha1.AddToScheme(scheme))
	// Registered even when prometheus-operator is absent: the types are only
	// used once its CRDs are discovered.
	utilruntime.Must(monitoringv1.AddToScheme(scheme))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Client:                  controllers.ManagerClientOptions(),
		Cache:                   controllers.ManagerCacheOptions(),
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:  probeAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "chatbackend-operator.chat.chatbackend.io",
		LeaderElectionNamespace: leaderElectionNamespace,
		// The process exits right after the manager stops, so releasing
		// the lease early lets a new leader take over without waiting for
		// the lease to expire.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}

	ctx := ctrl.SetupSignalHandler()
	r := &controllers.ChatBackendReconciler{
		Client:                    mgr.GetClient(),
		Scheme:                    mgr.GetScheme(),
		Recorder:                  mgr.GetEventRecorder("chatbackend-operator"),
		DefaultImage:              defaultImage,
		MonitoringRecheckInterval: monitoringRecheck,
		MonitoringLabels:          monitoringLabels,
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("set up ChatBackend controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add healthz check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add readyz check: %w", err)
	}

	log.Info("starting manager", "version", version.Version, "defaultImage", defaultImage)
	// Start returns when ctx is cancelled (SIGTERM/SIGINT), after the
	// controllers have finished their in-flight reconciles.
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run manager: %w", err)
	}
	return nil
}
