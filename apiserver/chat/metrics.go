package chat

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/dependency"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

// AnswersMetric counts answers by how they ended. A streamed answer has
// already sent HTTP 200 when retrieval or the model fails, so the HTTP
// metrics cannot see those failures: this counter can.
const AnswersMetric = "chatbackend_chat_answers_total"

type metrics struct {
	answers *prometheus.CounterVec
	deps    *dependency.Gauges
}

// Instrument registers the service's metrics on reg, and reports every
// retrieval (embedding and vector store) and generation (the model)
// outcome to deps. Call it once, before the service answers.
func (s *Service) Instrument(reg prometheus.Registerer, deps *dependency.Gauges) error {
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: AnswersMetric,
		Help: "Chat answers by status: complete, incomplete (the client went away), failed (retrieval or the model failed) or stopped (by its owner).",
	}, []string{"status"})
	if err := reg.Register(answers); err != nil {
		return fmt.Errorf("register %s: %w", AnswersMetric, err)
	}
	// Every status has a series from the start, so rate() over a
	// first failure is not lost to a series that did not exist yet.
	for _, st := range []string{store.StatusComplete, store.StatusIncomplete, store.StatusFailed, store.StatusStopped} {
		answers.WithLabelValues(st)
	}
	s.metrics = &metrics{answers: answers, deps: deps}
	return nil
}

// observe records one answer. A turn ended from outside (the client went
// away, the server cut it, its owner stopped it) says nothing about
// the dependencies, so their gauges are left alone then; a generation that
// never ran (retrieval failed) neither.
func (m *metrics) observe(status string, endedOutside, generated bool, retrErr, genErr error) {
	if m == nil {
		return
	}
	m.answers.WithLabelValues(status).Inc()
	if endedOutside {
		return
	}
	m.deps.Observe(dependency.VectorStore, retrErr)
	if generated {
		m.deps.Observe(dependency.LLM, genErr)
	}
}
