// Command manager runs the chatbackend operator: it reconciles ChatBackend
// resources into a running, monitored chat-apiserver.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
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

// Defaults of the flags that size the operator for a fleet.
const (
	// defaultMaxConcurrentReconciles: a reconcile mostly waits on the API
	// server, so a few in parallel converge a fleet of ChatBackends several
	// times faster than controller-runtime's one at a time, while one slow
	// ChatBackend no longer holds up the others.
	defaultMaxConcurrentReconciles = 4
	// defaultKubeAPIQPS and defaultKubeAPIBurst: client-go's 5 QPS / 10
	// burst would throttle the dozen requests a new ChatBackend takes (its
	// Secret reads and the applies of seven children) into seconds each
	// after an operator upgrade re-applies every ChatBackend.
	defaultKubeAPIQPS   = 50
	defaultKubeAPIBurst = 100
)

// options are the manager's command-line settings.
type options struct {
	metricsAddr, probeAddr, defaultImage string
	leaderElectionNamespace              string
	leaderElect, metricsSecure           bool
	monitoringRecheck                    time.Duration
	monitoringLabels                     map[string]string
	maxConcurrentReconciles              int
	kubeAPIQPS                           float64
	kubeAPIBurst                         int
	// watchNamespaces: empty watches the whole cluster.
	watchNamespaces []string
	// podUser is --pod-run-as-user before "auto" is resolved (resolve).
	podUser      podUserFlag
	rolloutDelay time.Duration
}

// bindFlags registers the manager's flags on fs; the returned options hold
// their values once fs is parsed (validate them then).
func bindFlags(fs *flag.FlagSet) *options {
	o := &options{}
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address the operator's /metrics endpoint binds to; 0 disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true,
		"Serve /metrics over HTTPS (a self-signed certificate) and only to clients whose token may get /metrics "+
			"(a TokenReview and a SubjectAccessReview per scrape); false serves plain HTTP to whoever reaches the port.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that only one of several replicas reconciles.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease; the operator's own namespace when running in a cluster.")
	fs.StringVar(&o.defaultImage, "default-apiserver-image", defaultImageRepository+":"+version.Version,
		"chat-apiserver image of ChatBackends that set no spec.image.")
	fs.DurationVar(&o.monitoringRecheck, "monitoring-recheck-interval", controllers.DefaultMonitoringRecheckInterval,
		"How often the operator looks again for the prometheus-operator CRDs while they are missing.")
	fs.Func("monitoring-labels", "Labels k=v,... put on every ServiceMonitor and PrometheusRule, so that Prometheus selects them "+
		"(kube-prometheus-stack: release=<its release name>); spec.monitoring.*.labels add to and override them.",
		func(v string) (err error) { o.monitoringLabels, err = labels.ConvertSelectorToLabelsMap(v); return err })
	fs.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", defaultMaxConcurrentReconciles,
		"How many ChatBackends are reconciled at the same time.")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", defaultKubeAPIQPS,
		"Sustained requests per second the operator may make to the Kubernetes API.")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", defaultKubeAPIBurst,
		"Requests the operator may make to the Kubernetes API in a burst, above --kube-api-qps.")
	fs.Func("watch-namespaces", "Namespaces ns1,ns2,... whose ChatBackends the operator reconciles; it lists and watches "+
		"nothing elsewhere, so Roles in these namespaces are all the access it needs. Empty: the whole cluster.",
		func(v string) (err error) { o.watchNamespaces, err = parseNamespaces(v); return err })
	fs.Var(&o.podUser, "pod-run-as-user", "runAsUser of the API and migrations pods: a UID, none (the platform assigns one, "+
		"as OpenShift's restricted SCC does), or auto (none when the API group security.openshift.io is served, else 65532).")
	fs.DurationVar(&o.rolloutDelay, "rollout-delay", controllers.DefaultRolloutDelay,
		"When --default-apiserver-image changes, start upgrading at most one ChatBackend without spec.image per this delay; 0 upgrades them all at once.")
	return o
}

// parseNamespaces reads --watch-namespaces: names separated by commas,
// each a valid namespace name, duplicates dropped.
func parseNamespaces(v string) ([]string, error) {
	var out []string
	for ns := range strings.SplitSeq(v, ",") {
		ns = strings.TrimSpace(ns)
		if ns == "" {
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("namespace %q: %s", ns, strings.Join(errs, "; "))
		}
		if !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out, nil
}

func (o *options) validate() error {
	switch {
	case o.defaultImage == "":
		return fmt.Errorf("--default-apiserver-image must not be empty")
	case o.maxConcurrentReconciles < 1:
		return fmt.Errorf("--max-concurrent-reconciles must be at least 1, not %d", o.maxConcurrentReconciles)
	case o.kubeAPIQPS <= 0:
		return fmt.Errorf("--kube-api-qps must be positive, not %g", o.kubeAPIQPS)
	case float64(o.kubeAPIBurst) < o.kubeAPIQPS:
		return fmt.Errorf("--kube-api-burst (%d) must be at least --kube-api-qps (%g)", o.kubeAPIBurst, o.kubeAPIQPS)
	case o.rolloutDelay < 0:
		return fmt.Errorf("--rollout-delay must not be negative, not %s", o.rolloutDelay)
	}
	return nil
}

// metricsOptions serves the operator's metrics as kubebuilder v4 scaffolds
// it: over HTTPS, authenticated and authorized by the API server, because
// the metrics name every ChatBackend of the cluster and the endpoint must
// not be open to every pod. HTTP/2 is off: its rapid-reset and stream
// attacks (CVE-2023-44487, CVE-2023-39325) are not worth it for a scrape.
func metricsOptions(o *options) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: o.metricsAddr}
	if o.metricsSecure {
		opts.SecureServing = true
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
		opts.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	}
	return opts
}

func run() error {
	o := bindFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	if err := o.validate(); err != nil {
		return err
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
	cfg.QPS, cfg.Burst = float32(o.kubeAPIQPS), o.kubeAPIBurst
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Client:                  controllers.ManagerClientOptions(),
		Cache:                   controllers.ManagerCacheOptions(o.watchNamespaces...),
		Metrics:                 metricsOptions(o),
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "chatbackend-operator.chat.chatbackend.io",
		LeaderElectionNamespace: o.leaderElectionNamespace,
		// The process exits right after the manager stops, so releasing
		// the lease early lets a new leader take over without waiting for
		// the lease to expire.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}

	podUser, err := o.podUser.resolve(cfg)
	if err != nil {
		return err
	}

	ctx := ctrl.SetupSignalHandler()
	r := &controllers.ChatBackendReconciler{
		Client:                    mgr.GetClient(),
		Scheme:                    mgr.GetScheme(),
		Recorder:                  mgr.GetEventRecorder("chatbackend-operator"),
		DefaultImage:              o.defaultImage,
		MonitoringRecheckInterval: o.monitoringRecheck,
		MonitoringLabels:          o.monitoringLabels,
		MaxConcurrentReconciles:   o.maxConcurrentReconciles,
		PodUser:                   podUser,
		RolloutDelay:              o.rolloutDelay,
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

	log.Info("starting manager", "version", version.Version, "defaultImage", o.defaultImage,
		"maxConcurrentReconciles", o.maxConcurrentReconciles, "kubeAPIQPS", o.kubeAPIQPS, "kubeAPIBurst", o.kubeAPIBurst,
		"watchNamespaces", o.watchNamespaces, "podRunAsUser", podUserLog(podUser))
	// Start returns when ctx is cancelled (SIGTERM/SIGINT), after the
	// controllers have finished their in-flight reconciles.
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run manager: %w", err)
	}
	return nil
}
