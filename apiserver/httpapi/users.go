package httpapi

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/chatbackend/chatbackend/apiserver/auth"
	"github.com/chatbackend/chatbackend/apiserver/httperr"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

const userIDKey = "chatbackend.user_id"

// userID is the authenticated user's id (BetterAuth's sub). It is set on
// every request under /v1 and /agents.
func userID(c *gin.Context) string { return c.GetString(userIDKey) }

// userCache remembers, per user, the (email, name) last written, so the
// users row is written on first sight and when the claims change, not on
// every request, and until when the row was last seen active, so it is not
// read on every request either. It is per process: another replica writes at
// most once more, and checks on its own.
type userCache struct {
	mu    sync.Mutex
	limit int
	// activeFor is how long a row found active is trusted without reading
	// it again; zero: never (checked on every request).
	activeFor time.Duration
	m         map[string]cachedUser
}

type cachedUser struct {
	claims userClaims
	// activeUntil: until then the row is taken to be active.
	activeUntil time.Time
}

type userClaims struct{ email, name string }

func newUserCache(limit int, activeFor time.Duration) *userCache {
	return &userCache{limit: limit, activeFor: activeFor, m: make(map[string]cachedUser)}
}

// fresh reports whether these claims were written for id, and whether its
// row was seen active within activeFor of now.
func (u *userCache) fresh(id string, c userClaims, now time.Time) (written, active bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	got, ok := u.m[id]
	if !ok || got.claims != c {
		return false, false
	}
	return true, now.Before(got.activeUntil)
}

// put records the claims written for id; the row's state is unknown.
func (u *userCache) put(id string, c userClaims) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.m) >= u.limit {
		// Dropping everything is crude but bounded; a user evicted here only
		// costs one idempotent upsert on their next request.
		clear(u.m)
	}
	u.m[id] = cachedUser{claims: c}
}

// sawActive records that id's row was read and found active at now.
func (u *userCache) sawActive(id string, now time.Time) {
	if u.activeFor <= 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if e, ok := u.m[id]; ok {
		e.activeUntil = now.Add(u.activeFor)
		u.m[id] = e
	}
}

// forget drops id: its next request writes and checks its row again.
func (u *userCache) forget(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.m, id)
}

// syncUser creates or updates the users row from the verified claims, then
// lets the request through only if that row is active.
//
// The row is read on a user's first request (in the statement that writes
// it: store.SyncUser) and then (one primary-key read) at most once per
// Deps.UserCheckInterval (serve: DefaultUserCheckInterval)
// per replica: an administrator's users.is_active = false takes effect
// (403) on every route and replica within that interval; zero reads it on
// every request. Only "active" is remembered, so a deactivated user is
// refused on every request, and reactivation takes effect at once. A row
// removed while this replica had it cached is created again from the claims:
// the token is valid, BetterAuth decides who may sign in and the row only
// mirrors its claims (removing it erased the user's conversations, through
// ON DELETE CASCADE); deactivating is how a user is kept out. (A write that
// meets the removed row within the interval answers 503 and forgets the
// user, see classify, so the retry re-creates it.)
func (h *handlers) syncUser(c *gin.Context) {
	id, ok := auth.IdentityFrom(c)
	if !ok || id.UserID == "" {
		// The auth middleware runs first; reaching here means a wiring bug.
		httperr.Abort(c, http.StatusUnauthorized, httperr.CodeUnauthorized, "no authenticated user")
		return
	}
	ctx := c.Request.Context()
	claims := userClaims{email: id.Email, name: id.Name}
	now := time.Now()
	written, active := h.users.fresh(id.UserID, claims, now)
	var err error
	if !active {
		if written {
			err = h.store.CheckUser(ctx, id.UserID)
		}
		if !written || errors.Is(err, store.ErrNotFound) {
			err = h.syncUserRow(ctx, id.UserID, claims)
		}
		if err == nil {
			h.users.sawActive(id.UserID, now)
		}
	}
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Set(userIDKey, id.UserID)
	c.Next()
}

// syncUserRow writes the users row, reading whether it is active in the
// same statement (store.SyncUser), and remembers the claims written, also
// when the row is deactivated (the error is then ErrUserInactive).
func (h *handlers) syncUserRow(ctx context.Context, userID string, claims userClaims) error {
	err := h.store.SyncUser(ctx, userID, claims.email, claims.name)
	if err == nil || errors.Is(err, store.ErrUserInactive) {
		h.users.put(userID, claims)
	}
	return err
}
