package specs_test

import (
	"testing"
	"time"

	"github.com/chatbackend/chatbackend/apiserver/auth"
	"github.com/chatbackend/chatbackend/apiserver/cli"
	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// A pod whose database is failing over at start-up waits for it (up to
// store.DefaultConnectTimeout) and then fetches the JWKS (up to
// auth.FetchTimeout) before it serves /healthz. Until the startup probe
// passes the kubelet runs no liveness probe; the budget must outlast that
// wait, or the kubelet kills a pod that would have come up. After start-up,
// liveness is /healthz, which does not depend on the database
// (httpapi's TestReadyzFailsOnlyForPodLocalProblems checks that).
func TestStartupProbeOutlastsTheServersWaits(t *testing.T) {
	budget := time.Duration(specs.StartupPeriodSeconds*specs.StartupFailureThreshold) * time.Second
	wait := store.DefaultConnectTimeout + auth.FetchTimeout
	if budget <= wait {
		t.Fatalf("startup probe budget %s must exceed the server's start-up waits (database %s + JWKS %s)",
			budget, store.DefaultConnectTimeout, auth.FetchTimeout)
	}
	c := specs.Deployment(minimal(), "img:1", "hash").Spec.Template.Spec.Containers[0]
	if c.StartupProbe == nil || c.StartupProbe.PeriodSeconds != specs.StartupPeriodSeconds ||
		c.StartupProbe.FailureThreshold != specs.StartupFailureThreshold {
		t.Fatalf("the Deployment's startup probe %+v does not use StartupPeriodSeconds × StartupFailureThreshold", c.StartupProbe)
	}
	for name, p := range map[string]string{"startup": c.StartupProbe.HTTPGet.Path, "liveness": c.LivenessProbe.HTTPGet.Path} {
		if p != "/healthz" {
			t.Errorf("%s probe is %s, want /healthz (independent of the database)", name, p)
		}
	}
}

// The kubelet SIGKILLs a pod terminationGracePeriodSeconds after it started
// terminating, preStop sleep included: the server's own drain
// (cli.ShutdownTimeout) must fit after the sleep, with a margin to exit.
func TestGracePeriodCoversTheServersDrain(t *testing.T) {
	if got := time.Duration(specs.ServerShutdownSeconds) * time.Second; got != cli.ShutdownTimeout {
		t.Fatalf("specs.ServerShutdownSeconds is %s, chat-apiserver drains for %s", got, cli.ShutdownTimeout)
	}
	pod := specs.Deployment(minimal(), "img:1", "hash").Spec.Template.Spec
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	preStop := time.Duration(pod.Containers[0].Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if need := preStop + cli.ShutdownTimeout + time.Second; grace < need {
		t.Fatalf("terminationGracePeriodSeconds %s < preStop %s + server drain %s + 1s to exit", grace, preStop, cli.ShutdownTimeout)
	}
}
