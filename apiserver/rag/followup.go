package rag

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
)

// Rewriter turns a follow-up question into a standalone search query from
// the conversation before it (generate.OpenAI does, with the chat model).
type Rewriter interface {
	Rewrite(ctx context.Context, question string, history []generate.Turn) (string, error)
}

// DefaultRewriteTimeout bounds a follow-up's rewrite: a short answer of a
// few tokens, which a model gives in about a second. Past it the follow-up
// is searched as without a model: the answer waits no longer for a better
// query.
const DefaultRewriteTimeout = 5 * time.Second

// RewritesMetric counts the rewrites of follow-ups by result.
const RewritesMetric = "chatbackend_rag_query_rewrites_total"

// Results of a rewrite (the metric's result label).
const (
	rewriteOK      = "rewritten"
	rewriteError   = "error"
	rewriteTimeout = "timeout"
	rewriteEmpty   = "empty"
)

// Instrument registers the engine's metrics on reg. Call it once, before
// the engine answers.
func (e *Engine) Instrument(reg prometheus.Registerer) error {
	rewrites := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: RewritesMetric,
		Help: "Follow-up questions rewritten into a standalone search query by the model, by result: rewritten, " +
			"or error, timeout, empty (then searched with the previous question's words, as without a model).",
	}, []string{"result"})
	if err := reg.Register(rewrites); err != nil {
		return fmt.Errorf("register %s: %w", RewritesMetric, err)
	}
	for _, r := range []string{rewriteOK, rewriteError, rewriteTimeout, rewriteEmpty} {
		rewrites.WithLabelValues(r)
	}
	e.rewrites = rewrites
	return nil
}

// query is what retrieval searches for question: the text, and the
// previous question a store may lean on at a lower weight
// (vectorstore.Query.Previous). A first question is searched as it is. A
// follow-up is rewritten by the Rewriter into a standalone query when
// there is one; without one, or when the rewrite fails, times out or comes
// back empty, it is searched with the previous question's words, as
// offline: a follow-up is answered either way.
func (e *Engine) query(ctx context.Context, question string, history []generate.Turn) (text, previous string) {
	previous = previousQuestion(history)
	if previous == "" || e.Rewriter == nil {
		return question, previous
	}
	rctx, cancel := context.WithTimeout(ctx, e.RewriteTimeout)
	defer cancel()
	q, err := e.Rewriter.Rewrite(rctx, question, history)
	if err == nil {
		e.countRewrite(rewriteOK)
		return q, ""
	}
	if ctx.Err() != nil {
		// The turn itself ended (client gone, stopped): retrieval fails
		// with it, and the model is not to blame.
		return question, previous
	}
	result := rewriteError
	switch {
	case errors.Is(err, generate.ErrEmptyRewrite):
		result = rewriteEmpty
	case rctx.Err() != nil:
		result = rewriteTimeout
	}
	e.countRewrite(result)
	if e.Log != nil {
		// The error names the model and the HTTP status, never the
		// question: a user's words stay out of the logs.
		e.Log.Warn("follow-up rewrite failed; searching with the previous question's words",
			"result", result, "timeout", e.RewriteTimeout.String(), "error", err.Error())
	}
	return question, previous
}

func (e *Engine) countRewrite(result string) {
	if e.rewrites != nil {
		e.rewrites.WithLabelValues(result).Inc()
	}
}

// previousQuestion is the last question of history, which a follow-up
// leans on in retrieval; "" when there is none.
func previousQuestion(history []generate.Turn) string {
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].Role == "user" {
			return history[i].Content
		}
	}
	return ""
}
