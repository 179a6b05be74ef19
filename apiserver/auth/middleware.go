package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/chatbackend/chatbackend/apiserver/httperr"
)

// identityKey is where Middleware leaves the Identity in the gin context.
const identityKey = "chatbackend.auth.identity"

// Middleware requires a valid "Authorization: Bearer <JWT>" and stores the
// caller for IdentityFrom. Otherwise it answers 401 with the API's error
// JSON and a WWW-Authenticate challenge (RFC 6750): plain for a missing
// token, error="invalid_token" for a bad one. A token longer than
// MaxTokenBytes is a 431.
func (v *Verifier) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := v.Verify(c.Request.Context(), bearerToken(c.GetHeader("Authorization")))
		if errors.Is(err, ErrTokenTooLarge) {
			// Not a bad token: one this server will not read. 401 would send
			// the client to sign in again, for the same token.
			httperr.Abort(c, http.StatusRequestHeaderFieldsTooLarge, httperr.CodeHeaderTooLarge,
				ErrTokenTooLarge.Error()+"; the user's name or image claim is too long")
			return
		}
		if err != nil {
			var authErr *Error
			if errors.As(err, &authErr) && authErr.Result == ResultMissing {
				c.Header("WWW-Authenticate", `Bearer realm="chatbackend"`)
			} else {
				c.Header("WWW-Authenticate", `Bearer error="invalid_token"`)
			}
			body, ok := rejectionBodies[err.Error()]
			if !ok {
				httperr.Abort(c, http.StatusUnauthorized, httperr.CodeUnauthorized, err.Error())
				return
			}
			// The same bytes httperr.Abort would encode, without encoding
			// them for every rejected token.
			c.Data(http.StatusUnauthorized, jsonContentType, body)
			c.Abort()
			return
		}
		c.Set(identityKey, id)
		c.Next()
	}
}

const jsonContentType = "application/json; charset=utf-8"

// rejectionBodies are the 401 bodies, by message: one per Result.
var rejectionBodies = func() map[string][]byte {
	m := make(map[string][]byte, len(allResults))
	for _, r := range allResults {
		if r == ResultOK {
			continue
		}
		msg := (&Error{Result: r}).Error()
		b, err := json.Marshal(httperr.Body{Error: httperr.Detail{Code: httperr.CodeUnauthorized, Message: msg}})
		if err != nil {
			panic(err) // strings only
		}
		m[msg] = b
	}
	return m
}()

// IdentityFrom returns the caller Middleware verified.
func IdentityFrom(c *gin.Context) (Identity, bool) {
	v, ok := c.Get(identityKey)
	if !ok {
		return Identity{}, false
	}
	id, ok := v.(Identity)
	return id, ok
}

// bearerToken extracts the token of a Bearer authorization header; any other
// scheme counts as no token.
func bearerToken(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
