package httpapi

// Per-user rate limits of the write routes and the cap on the answer
// streams one replica serves at once.
//
// Each write route is given a budget where it is registered (limit, in
// New); its handler spends a token with admit once the request is valid, so
// a malformed request is answered 400 and costs nothing. The budgets live
// in PostgreSQL (store.TakeRateToken), shared by every replica: see there
// for why.

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/chatbackend/chatbackend/apiserver/httperr"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

// RateLimit is a per-user budget: a token bucket that refills PerMinute
// tokens a minute and holds at most Burst.
type RateLimit = store.RateLimit

// Budget names, the rate_limits rows of a user.
const (
	// budgetChat: questions to the model, which cost its tokens.
	budgetChat = "chat"
	// budgetWrite: every other write (conversations, feedback).
	budgetWrite = "write"
)

// RetryAfterStreams is the Retry-After, in seconds, of a 503 answered
// because this replica serves as many streams as it may.
const RetryAfterStreams = 5

type budget struct {
	name  string
	limit RateLimit
}

const budgetKey = "chatbackend.budget"

// limit gives the route budget b, which its handler charges with admit.
func limit(b budget) gin.HandlerFunc {
	return func(c *gin.Context) { c.Set(budgetKey, b) }
}

// routeBudget is the budget limit gave the route.
func routeBudget(c *gin.Context) budget {
	b, ok := c.MustGet(budgetKey).(budget)
	if !ok {
		panic("httpapi: the route's budget is not a budget")
	}
	return b
}

// admit spends one token of the route's budget for the user. Handlers call
// it once the request is valid, before they act. Over the limit it answers
// 429 with Retry-After (fail, for a *store.RateLimitedError); when the
// database cannot be reached, 503. It returns false when it has answered.
// A handler whose write can take the token in its own statement or
// transaction does that instead (createConversation; postMessage, through
// chat.Service.Ask's charge): one round trip and commit fewer.
func (h *handlers) admit(c *gin.Context) bool {
	b := routeBudget(c)
	if err := h.store.TakeRateToken(c.Request.Context(), userID(c), b.name, b.limit); err != nil {
		h.fail(c, err)
		return false
	}
	return true
}

// streamSlots caps the answer streams (SSE) of this replica: each holds a
// connection, goroutines and a model request for as long as the answer
// takes, so without a cap a burst of streams exhausts the pod instead of
// being refused early.
type streamSlots struct {
	sem  *semaphore.Weighted
	open prometheus.Gauge
}

func newStreamSlots(n int, open prometheus.Gauge) streamSlots {
	return streamSlots{sem: semaphore.NewWeighted(int64(n)), open: open}
}

// acquire takes a slot, or answers 503 too_many_streams with Retry-After
// and returns false. The caller releases the slot when the stream ends,
// however it ends (done, error, client gone).
func (s streamSlots) acquire(c *gin.Context) bool {
	if s.sem.TryAcquire(1) {
		s.open.Inc()
		return true
	}
	c.Header("Retry-After", strconv.Itoa(RetryAfterStreams))
	httperr.Abort(c, http.StatusServiceUnavailable, httperr.CodeTooManyStreams,
		"this server is streaming as many answers as it may; retry shortly")
	return false
}

func (s streamSlots) release() {
	s.open.Dec()
	s.sem.Release(1)
}
