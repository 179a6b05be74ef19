package auth

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a token validation: the `result` label of
// chatbackend_token_validations_total and the class an *Error names.
const (
	ResultOK           = "ok"
	ResultMissing      = "missing"
	ResultMalformed    = "malformed"
	ResultExpired      = "expired"
	ResultBadSignature = "bad_signature"
	ResultUnknownKey   = "unknown_key"
	ResultBadIssuer    = "bad_issuer"
	ResultBadAudience  = "bad_audience"
	ResultBadAlgorithm = "bad_algorithm"
	// ResultBadLifetime: exp is further from iat than the configured
	// maximum token age.
	ResultBadLifetime = "bad_lifetime"
)

var allResults = []string{
	ResultOK, ResultMissing, ResultMalformed, ResultExpired, ResultBadSignature,
	ResultUnknownKey, ResultBadIssuer, ResultBadAudience, ResultBadAlgorithm, ResultBadLifetime,
}

type metrics struct {
	validations     *prometheus.CounterVec
	refreshes       *prometheus.CounterVec
	lastSuccess     prometheus.Gauge
	keys            prometheus.Gauge
	refreshOK       prometheus.Counter
	refreshFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatbackend_token_validations_total",
			Help: "Bearer token validations by result (ok or the class of failure).",
		}, []string{"result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chatbackend_jwks_refresh_total",
			Help: "JWKS fetches from BetterAuth by result (success, error).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chatbackend_jwks_last_success_timestamp_seconds",
			Help: "Unix time of the last successful JWKS fetch.",
		}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chatbackend_jwks_keys",
			Help: "Signing keys currently cached from the JWKS.",
		}),
	}
	// Every series exists from the start, so alerts and rate() see a zero
	// rather than nothing before the first failure of a kind.
	for _, r := range allResults {
		m.validations.WithLabelValues(r)
	}
	m.refreshOK = m.refreshes.WithLabelValues("success")
	m.refreshFailures = m.refreshes.WithLabelValues("error")

	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.validations, m.refreshes, m.lastSuccess, m.keys} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register auth metrics: %w", err)
		}
	}
	return m, nil
}
