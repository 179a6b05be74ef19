package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/chatbackend/chatbackend/apiserver/httperr"
)

// decodeJSON reads the request body strictly into v: one JSON value, no
// unknown fields, at most MaxBodyBytes. On failure it has already answered
// (400, 408 or 413) and returns false. An empty body is an error unless
// allowEmpty, in which case v is left as is.
func decodeJSON(c *gin.Context, v any, allowEmpty bool) bool {
	if c.Request.Body == nil || c.Request.Body == http.NoBody {
		if allowEmpty {
			return true
		}
		httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest, "request body required")
		return false
	}
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) && allowEmpty {
		return true
	}
	if err == nil {
		// Anything after the first value (a second object, garbage) is an error.
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errTrailing
			if terr != nil {
				err = terr
			}
		}
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		httperr.Abort(c, http.StatusRequestEntityTooLarge, httperr.CodeTooLarge,
			fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
		return false
	}
	if errors.Is(err, errBodyTimeout) {
		// The body is fine as far as we know; the client was too slow.
		httperr.Abort(c, http.StatusRequestTimeout, httperr.CodeRequestTimeout, errBodyTimeout.Error())
		return false
	}
	httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest, "invalid JSON body: "+describe(err))
	return false
}

var errTrailing = errors.New("body must hold a single JSON object")

// describe says what is wrong with a body without echoing it.
func describe(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s", typ.Field, typ.Type)
		}
		return fmt.Sprintf("expected %s, got %s", typ.Type, typ.Value)
	}
	// Covers `json: unknown field "x"` and errTrailing.
	return err.Error()
}
