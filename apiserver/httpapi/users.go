package httpapi

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/chatbackend/chatbackend/apiserver/auth"
	"github.com/chatbackend/chatbackend/apiserver/httperr"
	"github.com/chatbackend/chatbackend/apiserver/store"
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

// syncUser creates or updates the users row from the verified claims, then
// lets the request through only if that row is active.
//
// The row is checked on every request (one primary-key read): an
// administrator's users.is_active = false takes effect at once on every
// route and every replica (403). A row removed while this replica had it
// cached is created again from the claims: the token is valid, BetterAuth
// decides who may sign in and the row only mirrors its claims (removing it
// erased the user's conversations, through ON DELETE CASCADE); deactivating
// is how a user is kept out.
func (h *handlers) syncUser(c *gin.Context) {
	id, ok := auth.IdentityFrom(c)
	if !ok || id.UserID == "" {
		// The auth middleware runs first; reaching here means a wiring bug.
		httperr.Abort(c, http.StatusUnauthorized, httperr.CodeUnauthorized, "no authenticated user")
		return
	}
	ctx := c.Request.Context()
	claims := userClaims{email: id.Email, name: id.Name}
	err := h.upsertUser(ctx, id.UserID, claims, false)
	if err == nil {
		err = h.store.CheckUser(ctx, id.UserID)
		if errors.Is(err, store.ErrNotFound) {
			err = h.upsertUser(ctx, id.UserID, claims, true)
		}
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Set(userIDKey, id.UserID)
	c.Next()
}

// upsertUser writes the users row when this replica has not written these
// claims yet, or always when force.
func (h *handlers) upsertUser(ctx context.Context, userID string, claims userClaims, force bool) error {
	if !force && h.users.fresh(userID, claims) {
		return nil
	}
	if _, err := h.store.UpsertUser(ctx, userID, claims.email, claims.name); err != nil {
		return err
	}
	h.users.put(userID, claims)
	return nil
}
