package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify: whatever the bearer token, verification (the parsing and
// header checks before any signature, then the signature and claims) never
// panics, refuses with an *Error of a known class other than ok whose
// message does not quote the token, and accepts nothing but a token signed
// with the JWKS's key.
func FuzzVerify(f *testing.F) {
	pub, priv := newEd25519(f)
	const kid, iss = "k", "https://auth.example"
	srv := staticJWKS(f, map[string]ed25519.PublicKey{kid: pub})
	v, _ := newVerifier(f, Options{JWKSURL: srv.URL, Issuer: iss, RefetchSpacing: time.Hour})
	claims := jwt.MapClaims{"sub": "user-1", "iss": iss, "aud": iss, "name": "A", "email": "a@example.com",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	valid := sign(f, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": kid}, claims)
	_, stranger := newEd25519(f)
	for _, seed := range []string{
		valid, valid + "x", valid[:len(valid)-2], strings.Replace(valid, ".", "..", 1), "", "a.b.c", "...", "e30.e30.",
		sign(f, jwt.SigningMethodEdDSA, stranger, map[string]any{"kid": kid}, claims),
		sign(f, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": kid, "crit": []string{"b64"}}, claims),
		sign(f, jwt.SigningMethodHS256, []byte(pub), map[string]any{"kid": kid}, claims),
		sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": kid}, claims),
		"eyJhbGciOiJFZERTQSIsImtpZCI6ImsifQ.eyJleHAiOiIxIn0.AAAA",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(context.Background(), raw)
		if err == nil {
			if raw != valid {
				// Only the signing key makes a token; the fuzzer has none.
				t.Fatalf("accepted a token that is not the one signed: %q", raw)
			}
			if id.UserID != "user-1" {
				t.Fatalf("accepted with identity %+v", id)
			}
			return
		}
		var authErr *Error
		if !errors.As(err, &authErr) {
			t.Fatalf("%q refused with %T %v, not an *auth.Error", raw, err, err)
		}
		if authErr.Result == ResultOK || !slices.Contains(allResults, authErr.Result) {
			t.Fatalf("%q refused with unknown class %q", raw, authErr.Result)
		}
		if len(raw) > 8 && strings.Contains(err.Error(), raw) {
			t.Fatalf("the error quotes the token: %v", err)
		}
	})
}

// FuzzBearerToken: the Authorization header parser returns a trimmed part of
// the header, and nothing for any scheme but Bearer.
func FuzzBearerToken(f *testing.F) {
	for _, seed := range []string{"", "Bearer abc", "bearer  a.b.c ", "Basic abc", "Bearer", "Bearerabc", "\tBearer\tx"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok := bearerToken(header)
		if tok == "" {
			return
		}
		if tok != strings.TrimSpace(tok) || !strings.Contains(header, tok) {
			t.Fatalf("bearerToken(%q) = %q", header, tok)
		}
		scheme, _, _ := strings.Cut(strings.TrimSpace(header), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			t.Fatalf("bearerToken(%q) = %q for scheme %q", header, tok, scheme)
		}
	})
}
