package dependency_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chatbackend/chatbackend/apiserver/dependency"
)

func TestObserveFollowsTheLastCheck(t *testing.T) {
	reg := prometheus.NewRegistry()
	g, err := dependency.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	g.Observe(dependency.Database, nil)
	g.Observe(dependency.LLM, errors.New("502 from the model"))
	g.Observe(dependency.Database, errors.New("connection refused"))
	want := `
# HELP chatbackend_dependency_up 1 if the last check of the dependency (database, jwks, vector_store, llm) succeeded, 0 if it failed.
# TYPE chatbackend_dependency_up gauge
chatbackend_dependency_up{dependency="database"} 0
chatbackend_dependency_up{dependency="llm"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), dependency.MetricName); err != nil {
		t.Fatal(err)
	}
	g.Observe(dependency.Database, nil)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(strings.Replace(want, `"database"} 0`, `"database"} 1`, 1)), dependency.MetricName); err != nil {
		t.Fatal("a successful check sets 1 again:", err)
	}
	var none *dependency.Gauges
	none.Observe(dependency.JWKS, nil) // a nil Gauges ignores observations
}
