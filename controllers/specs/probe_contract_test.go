package specs_test

import (
	"testing"
	"time"

	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// The kubelet gives up on a probe after its timeout; /readyz bounds its own
// database check by httpapi.ReadyzTimeout. If the probe gave up first, a
// slow but working database would mark pods unready.
func TestReadinessProbeOutlastsReadyz(t *testing.T) {
	probe := time.Duration(specs.ReadinessTimeoutSeconds) * time.Second
	if probe <= httpapi.ReadyzTimeout {
		t.Fatalf("readiness probe timeout %s must exceed /readyz's own check timeout %s", probe, httpapi.ReadyzTimeout)
	}
	d := specs.Deployment(minimal(), "img:1", "hash")
	got := d.Spec.Template.Spec.Containers[0].ReadinessProbe.TimeoutSeconds
	if got != specs.ReadinessTimeoutSeconds {
		t.Fatalf("the Deployment's readiness probe timeout is %ds, want ReadinessTimeoutSeconds (%ds)", got, specs.ReadinessTimeoutSeconds)
	}
}
