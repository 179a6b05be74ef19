package httpapi

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// bodyTypes are the request bodies of every route that takes one, each
// made fresh for a decode.
var bodyTypes = map[string]func() any{
	"createConversation": func() any { return &createConversationBody{} },
	"rename":             func() any { return &renameBody{} },
	"message":            func() any { return &messageBody{} },
	"agentsRun":          func() any { return &agentsRunBody{} },
	"feedback":           func() any { return &feedbackBody{} },
}

// FuzzParseBody: whatever the bytes, decoding and validating any request
// body never panics, refuses only with the client's error (an *inputError:
// 400), and what it accepts holds only storable text, passes the body's own
// rules, and decodes again from its own encoding to the same value.
func FuzzParseBody(f *testing.F) {
	for _, seed := range []string{
		``, ` `, `{}`, `null`, `[]`, `"x"`, `{"title":"Install guide"}`, `{"title":null}`,
		`{"title":"a\u0000b"}`, `{"title":"\ud800"}`, "{\"title\":\"caf\xe9\"}", `{"title":5}`,
		`{"title":"x"}{"title":"y"}`, `{"title":"x","owner":"bob"}`, `{"content":"How do I rotate keys?"}`,
		`{"question":"hi","conversation_id":"00000000-0000-4000-8000-000000000000"}`,
		`{"rating":"up","comment":"spot on"}`, `{"rating":"down","comment":"\u0000"}`,
		`{"title":"` + strings.Repeat("ü", 256) + `"}`, `{"Title":"case"}`, `{"title":"x"} trailing`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for name, fresh := range bodyTypes {
			v := fresh()
			err := parseBody([]byte(raw), v)
			if err != nil {
				var input *inputError
				if !errors.As(err, &input) {
					t.Fatalf("%s: %q refused with %T %v, not the client's error", name, raw, err, err)
				}
				if utf8.ValidString(raw) && len(raw) > 16 && strings.Contains(err.Error(), raw) {
					t.Fatalf("%s: the error echoes the body: %v", name, err)
				}
				continue
			}
			checkStorable(t, name, reflect.ValueOf(v))
			if val, ok := v.(validator); ok {
				if err := val.validate(); err != nil {
					t.Fatalf("%s: accepted %q that its rules refuse: %v", name, raw, err)
				}
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: encode %#v: %v", name, v, err)
			}
			w := fresh()
			if err := parseBody(again, w); err != nil {
				t.Fatalf("%s: %s (from %q) does not decode again: %v", name, again, raw, err)
			}
			if !reflect.DeepEqual(v, w) {
				t.Fatalf("%s: round trip changed %#v into %#v", name, v, w)
			}
		}
	})
}

// checkStorable fails unless every string in v is valid UTF-8 without NUL.
func checkStorable(t *testing.T, name string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			checkStorable(t, name, v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			checkStorable(t, name, v.Field(i))
		}
	case reflect.String:
		if s := v.String(); !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("%s: accepted text PostgreSQL cannot store: %q", name, s)
		}
	default:
		t.Fatalf("%s: unexpected %s field", name, v.Kind())
	}
}
