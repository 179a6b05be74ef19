package httpapi

import (
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/chatbackend/chatbackend/apiserver/auth"
	"github.com/chatbackend/chatbackend/apiserver/httperr"
)

const userIDKey = "chatbackend.user_id"

// userID is the authenticated user's id (BetterAuth's sub). It is set on
// every request under /v1 and /agents.
func userID(c *gin.Context) string { return c.GetString(userIDKey) }

// userCache remembers the (email, name) last written for each user, so the
// users row is written on first sight and when the claims change, not on
// every request. It is per process: another replica writes at most once more.
type userCache struct {
	mu    sync.Mutex
	limit int
	m     map[string]userClaims
}

type userClaims struct{ email, name string }

func newUserCache(limit int) *userCache {
	return &userCache{limit: limit, m: make(map[string]userClaims)}
}

func (u *userCache) fresh(id string, c userClaims) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	got, ok := u.m[id]
	return ok && got == c
}

func (u *userCache) put(id string, c userClaims) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.m) >= u.limit {
		// Dropping everything is crude but bounded; a user evicted here only
		// costs one idempotent upsert on their next request.
		clear(u.m)
	}
	u.m[id] = c
}

// syncUser creates or updates the users row from the verified claims.
func (h *handlers) syncUser(c *gin.Context) {
	id, ok := auth.IdentityFrom(c)
	if !ok || id.UserID == "" {
		// The auth middleware runs first; reaching here means a wiring bug.
		httperr.Abort(c, http.StatusUnauthorized, httperr.CodeUnauthorized, "no authenticated user")
		return
	}
	claims := userClaims{email: id.Email, name: id.Name}
	if !h.users.fresh(id.UserID, claims) {
		if _, err := h.store.UpsertUser(c.Request.Context(), id.UserID, id.Email, id.Name); err != nil {
			// Every request of the user needs this row: whatever the cause,
			// the request can only be retried later.
			h.log.Error("sync user", "error", err.Error())
			unavailable(c, "database unavailable")
			return
		}
		h.users.put(id.UserID, claims)
	}
	c.Set(userIDKey, id.UserID)
	c.Next()
}
