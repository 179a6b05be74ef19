package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/chatbackend/chatbackend/apiserver/httperr"
)

// validator is a request body type with rules decoding cannot check
// (required fields, lengths); validate runs after the text check, so it may
// assume well-formed strings.
type validator interface {
	validate() error
}

// inputError is a request body refused as the client's error (400); its
// message is meant for the client and never echoes the body.
type inputError struct{ message string }

func (e *inputError) Error() string { return e.message }

func invalidf(format string, args ...any) error {
	return &inputError{message: fmt.Sprintf(format, args...)}
}

// errEmptyBody: no body, or only whitespace.
var errEmptyBody = &inputError{message: "request body required"}

// decodeJSON reads the request body into v and checks it (parseBody). On
// failure it has already answered (400, 408 or 413) and returns false. An empty
// body is an error unless allowEmpty, in which case v is left as is (and
// still validated).
func decodeJSON(c *gin.Context, v any, allowEmpty bool) bool {
	var raw []byte
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		var err error
		// limitBody has capped the body: reading it whole is bounded.
		if raw, err = io.ReadAll(c.Request.Body); err != nil {
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
			// The client stopped sending mid-body: it is not listening either.
			httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest, "the request body could not be read")
			return false
		}
	}
	err := parseBody(raw, v)
	if err == nil || allowEmpty && errors.Is(err, errEmptyBody) {
		return true
	}
	httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest, err.Error())
	return false
}

// parseBody is the one decoding and validation of every JSON request body:
// one JSON object, no unknown fields, valid UTF-8, no NUL in any string
// (PostgreSQL cannot store it in text), then v's own rules if it is a
// validator. Every error it
// returns is an *inputError: the client's mistake, never the server's.
func parseBody(raw []byte, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return errEmptyBody
	}
	// encoding/json would silently turn invalid UTF-8 into U+FFFD: what was
	// stored would not be what was sent.
	if !utf8.Valid(raw) {
		return invalidf("invalid JSON body: not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Anything after the first value (a second object, garbage) is an error.
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errTrailing
		}
	}
	if err != nil {
		return invalidf("invalid JSON body: %s", describe(err))
	}
	if err := checkText(reflect.ValueOf(v), ""); err != nil {
		return err
	}
	if val, ok := v.(validator); ok {
		return val.validate()
	}
	return nil
}

var errTrailing = errors.New("body must hold a single JSON object")

// checkText refuses a NUL character in any string of v, a (pointer to a)
// struct of strings and string pointers: JSON allows "\u0000", PostgreSQL
// text does not.
func checkText(v reflect.Value, field string) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkText(v.Elem(), field)
	case reflect.String:
		if strings.ContainsRune(v.String(), 0) {
			return invalidf("field %q contains a NUL character", field)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if err := checkText(v.Field(i), name); err != nil {
				return err
			}
		}
	default:
		// Request bodies hold only strings (numbers and booleans have no
		// NUL); a new kind of field must be added here.
		panic(fmt.Sprintf("checkText: field %q is a %s", field, v.Kind()))
	}
	return nil
}

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
