package httpapi

// Per-user rate limiting of the chat routes (each answer costs model
// tokens). Feedback and the conversation routes are not limited.

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/chatbackend/chatbackend/apiserver/httperr"
)

// RateLimit is each user's budget of chat requests: a token bucket that
// refills PerMinute tokens a minute and holds at most Burst.
type RateLimit struct {
	PerMinute float64
	Burst     int
}

// userLimiter is a token bucket per user. Idle buckets (full again) are
// dropped now and then, so memory follows the active users only.
type userLimiter struct {
	mu        sync.Mutex
	limit     rate.Limit
	burst     int
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

func newUserLimiter(r RateLimit) *userLimiter {
	return &userLimiter{limit: rate.Limit(r.PerMinute / 60), burst: r.Burst,
		buckets: map[string]*rate.Limiter{}, lastSweep: time.Now()}
}

// allow takes a token for user, or says how long until one is available.
func (u *userLimiter) allow(user string, now time.Time) (bool, time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if now.Sub(u.lastSweep) > time.Minute {
		for id, l := range u.buckets {
			if l.TokensAt(now) >= float64(u.burst) {
				delete(u.buckets, id)
			}
		}
		u.lastSweep = now
	}
	l, ok := u.buckets[user]
	if !ok {
		l = rate.NewLimiter(u.limit, u.burst)
		u.buckets[user] = l
	}
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// middleware answers 429 with Retry-After once the user's bucket is empty.
func (u *userLimiter) middleware(c *gin.Context) {
	ok, wait := u.allow(userID(c), time.Now())
	if ok {
		c.Next()
		return
	}
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	c.Header("Retry-After", strconv.Itoa(secs))
	httperr.Abort(c, http.StatusTooManyRequests, httperr.CodeRateLimited,
		fmt.Sprintf("too many chat requests; retry in %d s", secs))
}
