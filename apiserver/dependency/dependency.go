// Package dependency exports whether chat-apiserver can reach what it
// depends on, as the gauge chatbackend_dependency_up{dependency}. Each
// value is set by a check the server makes anyway, so nothing here adds
// traffic: /readyz pings the database (every readiness probe), the JWKS
// refresh fetches the keys, and every chat turn retrieves (embedding and
// vector store) and generates (the model). A dependency never checked yet
// has no series, except the database: serve reports it 0 from start-up
// until it first answers, so a pod that cannot reach it is seen.
package dependency

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// The dependency label values.
const (
	Database    = "database"
	JWKS        = "jwks"
	VectorStore = "vector_store"
	LLM         = "llm"
)

// MetricName is the gauge's name; the alert rules match on it.
const MetricName = "chatbackend_dependency_up"

// Gauges holds chatbackend_dependency_up. A nil *Gauges ignores every
// observation, so code paths that are tested without metrics need no
// special case.
type Gauges struct {
	up *prometheus.GaugeVec
}

// New registers the gauge on reg.
func New(reg prometheus.Registerer) (*Gauges, error) {
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricName,
		Help: "1 if the last check of the dependency (database, jwks, vector_store, llm) succeeded, 0 if it failed.",
	}, []string{"dependency"})
	if err := reg.Register(up); err != nil {
		return nil, fmt.Errorf("register %s: %w", MetricName, err)
	}
	return &Gauges{up: up}, nil
}

// Observe records the outcome of a check of dependency: up when err is nil.
func (g *Gauges) Observe(dependency string, err error) {
	if g == nil {
		return
	}
	v := 1.0
	if err != nil {
		v = 0
	}
	g.up.WithLabelValues(dependency).Set(v)
}
