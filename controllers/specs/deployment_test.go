package specs_test

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/chatbackend/chatbackend/controllers/specs"
)

// readyzDatabaseTimeoutSeconds is /readyz's own database check timeout
// (httpapi.ReadyzTimeout, 2 s); the probe must wait longer than that.
const readyzDatabaseTimeoutSeconds = 2

// chatAPIServerShutdownSeconds is chat-apiserver's graceful shutdown after
// SIGTERM (apiserver/cli shutdownTimeout).
const chatAPIServerShutdownSeconds = 25

// TestDeploymentRollsWithoutDroppingRequests: what a real cluster showed
// dropped requests (no preStop delay) and flooded events (probes before the
// server listens, a probe timeout below /readyz's own).
func TestDeploymentRollsWithoutDroppingRequests(t *testing.T) {
	g := NewWithT(t)
	d := specs.Deployment(minimal(), "reg/chat:v1", "h")
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]

	// Terminating pods keep serving while endpoints are removed; native
	// sleep, as the distroless image has no shell.
	g.Expect(c.Lifecycle).NotTo(BeNil())
	g.Expect(c.Lifecycle.PreStop).NotTo(BeNil())
	g.Expect(c.Lifecycle.PreStop.Exec).To(BeNil(), "no shell in the image")
	g.Expect(c.Lifecycle.PreStop.Sleep).NotTo(BeNil())
	g.Expect(c.Lifecycle.PreStop.Sleep.Seconds).To(BeNumerically(">=", 5))
	g.Expect(pod.TerminationGracePeriodSeconds).NotTo(BeNil())
	g.Expect(*pod.TerminationGracePeriodSeconds).To(BeNumerically(">", c.Lifecycle.PreStop.Sleep.Seconds+chatAPIServerShutdownSeconds),
		"the grace period covers the preStop sleep and the server's shutdown")

	// Never below the desired capacity during a rollout.
	g.Expect(d.Spec.Strategy.Type).To(Equal(appsv1.RollingUpdateDeploymentStrategyType))
	g.Expect(d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue()).To(Equal(0))
	g.Expect(d.Spec.Strategy.RollingUpdate.MaxSurge.String()).NotTo(Equal("0"))

	// A startup probe on /healthz gates readiness and liveness.
	g.Expect(c.StartupProbe).NotTo(BeNil())
	g.Expect(c.StartupProbe.HTTPGet.Path).To(Equal("/healthz"))
	g.Expect(c.StartupProbe.PeriodSeconds*c.StartupProbe.FailureThreshold).To(BeNumerically(">=", 30),
		"a slow start is not killed")
	g.Expect(c.LivenessProbe.InitialDelaySeconds).To(BeZero(), "the startup probe replaces the guess")

	g.Expect(c.ReadinessProbe.TimeoutSeconds).To(BeNumerically(">", readyzDatabaseTimeoutSeconds),
		"/readyz answers within its own database timeout; the probe must wait for it")
	g.Expect(c.LivenessProbe.TimeoutSeconds).To(BeNumerically(">", 1))

	// Requests by default: not BestEffort.
	g.Expect(c.Resources.Requests).To(HaveKey(corev1.ResourceCPU))
	g.Expect(c.Resources.Requests).To(HaveKey(corev1.ResourceMemory))
	g.Expect(c.Resources.Limits).To(HaveKey(corev1.ResourceMemory))
}
