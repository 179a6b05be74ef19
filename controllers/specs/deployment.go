package specs

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// Shutdown timing of the API pods.
const (
	// PreStopSleepSeconds keeps a terminating pod serving while the endpoint
	// removal reaches every kube-proxy and load balancer. chat-apiserver
	// closes its listener as soon as it gets SIGTERM; without this delay a
	// real cluster dropped 15 of 6,295 requests per rollout, with 5 s none
	// of 8,319. The kubelet's native sleep action (Kubernetes 1.30+) is used
	// because the distroless image has no shell to run `sleep`.
	PreStopSleepSeconds int64 = 5
	// ServerShutdownSeconds is chat-apiserver's own graceful shutdown
	// (apiserver/cli.ShutdownTimeout): in-flight requests, streamed answers
	// included, get this long after SIGTERM. Not imported, so specs stays
	// free of the server; lifecycle_contract_test.go keeps the two equal.
	ServerShutdownSeconds int64 = 25
	// TerminationGracePeriodSeconds covers the preStop sleep (which counts
	// against the grace period), the server's shutdown and a margin for the
	// process to exit before the kubelet's SIGKILL.
	TerminationGracePeriodSeconds = PreStopSleepSeconds + ServerShutdownSeconds + 5
)

// Probe timing of the API container.
const (
	// ReadinessTimeoutSeconds must exceed /readyz's own database check
	// timeout (httpapi.ReadyzTimeout): with the kubelet's default 1 s a slow
	// but healthy database made the probe fail before /readyz could answer.
	// Not imported from httpapi, so specs stays free of the server;
	// probe_contract_test.go keeps the two in order.
	ReadinessTimeoutSeconds int32 = 3
	// StartupPeriodSeconds × StartupFailureThreshold is how long a new pod
	// may take to serve HTTP before the kubelet restarts it. chat-apiserver
	// serves only after it waited for the database (store.
	// DefaultConnectTimeout, 60 s, which covers a failover) and fetched the
	// JWKS once (auth.FetchTimeout, 10 s): the budget outlasts both, so the
	// server, not the kubelet, decides when waiting is pointless, and says
	// why in its log (lifecycle_contract_test.go). Until the startup probe
	// passes, readiness and liveness are not run: no "connection refused"
	// warnings on every rollout, and no liveness kill during the wait.
	StartupPeriodSeconds    int32 = 1
	StartupFailureThreshold int32 = 90
)

// Deployment runs `chat-apiserver serve` with image, which the reconciler
// passes as the last image whose migrations succeeded, never simply
// spec.image: new code must not serve an old schema. envHash names the env
// Secret (EnvSecretName) whose database that image was migrated on; it goes
// on the pod template, so a change of the referenced Secrets rolls the pods.
func Deployment(cb *chatv1alpha1.ChatBackend, image, envHash string) *appsv1.Deployment {
	pod := podSpec(cb, image, envHash, []string{"serve"})
	pod.TerminationGracePeriodSeconds = ptr.To(max(cb.Spec.TerminationGracePeriodSeconds, TerminationGracePeriodSeconds))
	pod.TopologySpreadConstraints = cb.Spec.TopologySpreadConstraints
	if pod.TopologySpreadConstraints == nil {
		pod.TopologySpreadConstraints = DefaultTopologySpread(cb)
	}
	c := &pod.Containers[0]
	c.Ports = []corev1.ContainerPort{
		{Name: HTTPPortName, ContainerPort: HTTPPort, Protocol: corev1.ProtocolTCP},
		{Name: MetricsPortName, ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP},
	}
	c.Lifecycle = &corev1.Lifecycle{
		PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: PreStopSleepSeconds}},
	}
	// /healthz answers as soon as the process serves HTTP: it gates the
	// other probes at start-up.
	c.StartupProbe = &corev1.Probe{
		ProbeHandler:     httpGet("/healthz"),
		PeriodSeconds:    StartupPeriodSeconds,
		FailureThreshold: StartupFailureThreshold,
		TimeoutSeconds:   1,
	}
	// /readyz fails only for what is wrong with this pod (JWKS never loaded,
	// shutting down): take it out of the Service, but do not restart it for
	// that (liveness is /healthz, which only says the process serves HTTP).
	// A database outage is shared by every pod, so it does not make pods
	// unready; requests answer 503 with Retry-After instead.
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:     httpGet("/readyz"),
		PeriodSeconds:    5,
		TimeoutSeconds:   ReadinessTimeoutSeconds,
		FailureThreshold: 3,
	}
	c.LivenessProbe = &corev1.Probe{
		ProbeHandler:     httpGet("/healthz"),
		PeriodSeconds:    10,
		TimeoutSeconds:   ReadinessTimeoutSeconds,
		FailureThreshold: 3,
	}

	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(cb, cb.Name, ComponentAPI),
		Spec: appsv1.DeploymentSpec{
			Replicas:             ptr.To(cb.Spec.ReplicasOrDefault()),
			RevisionHistoryLimit: cb.Spec.RevisionHistoryLimit,
			Selector:             &metav1.LabelSelector{MatchLabels: SelectorLabels(cb)},
			// Surge first, never drop below the desired count: a rollout
			// must not cost capacity.
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromString("25%")),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: podMetadata(cb.Spec.PodMetadata, Labels(cb, ComponentAPI), map[string]string{AnnotationEnvHash: envHash}),
				Spec:       pod,
			},
		},
	}
}

// DefaultTopologySpread spreads the API pods over nodes when the spec sets
// no topologySpreadConstraints: two replicas on one node go down together
// when it drains or fails, which the PodDisruptionBudget cannot prevent.
// Soft (ScheduleAnyway), so a one-node cluster or a full pool still
// schedules them. pod-template-hash limits the count to the current
// ReplicaSet: during a rollout the old pods, about to go, do not skew it.
func DefaultTopologySpread(cb *chatv1alpha1.ChatBackend) []corev1.TopologySpreadConstraint {
	return []corev1.TopologySpreadConstraint{{
		MaxSkew:           1,
		TopologyKey:       corev1.LabelHostname,
		WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: SelectorLabels(cb)},
		MatchLabelKeys:    []string{appsv1.DefaultDeploymentUniqueLabelKey},
	}}
}

func httpGet(path string) corev1.ProbeHandler {
	return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString(HTTPPortName)}}
}
