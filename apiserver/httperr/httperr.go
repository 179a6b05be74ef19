// Package httperr writes the API's one error shape:
//
//	{"error":{"code":"...","message":"..."}}
//
// Every handler and middleware answers errors through it, so clients can rely
// on a single format whatever layer refused the request.
package httperr

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Body is the JSON error envelope.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the machine-readable code and the human-readable message.
type Detail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Common codes.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeTooLarge         = "request_too_large"
	CodeRequestTimeout   = "request_timeout"
	CodeHeaderTooLarge   = "header_too_large"
	CodeRateLimited      = "rate_limited"
	CodeInternal         = "internal"
	CodeUnavailable      = "unavailable"
	CodeUpstream         = "upstream_error"
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeConflict: the request does not fit the resource's state (an
	// answer that already finished cannot be stopped).
	CodeConflict = "conflict"
	// CodeUserInactive: the token is valid but the account is deactivated
	// (users.is_active = false).
	CodeUserInactive = "user_inactive"
)

// CodeTooManyStreams: the replica streams as many answers as it may (503
// with Retry-After).
const CodeTooManyStreams = "too_many_streams"

// Abort writes the error body with status and stops the gin chain.
func Abort(c *gin.Context, status int, code, message string) {
	c.AbortWithStatusJSON(status, Body{Error: Detail{Code: code, Message: message}})
}

// Write writes the error body to a plain http.ResponseWriter.
func Write(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Body{Error: Detail{Code: code, Message: message}})
}
