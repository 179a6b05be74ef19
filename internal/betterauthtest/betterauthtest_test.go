package betterauthtest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// decodeSegment decodes one base64url part of a JWT.
func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decode %q: %v", seg, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return m
}

func jwks(t *testing.T, s *Server) []map[string]any {
	t.Helper()
	resp, err := http.Get(s.JWKSURL)
	if err != nil {
		t.Fatalf("GET jwks: %v", err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("decode jwks: %v", err)
	}
	return set.Keys
}

// The harness hands out real jwt-plugin tokens for the user it signed up, and
// rotation makes BetterAuth sign with a new key while the old one stays
// published.
func TestHarness(t *testing.T) {
	s := Start(t)
	id := s.SignUp(t, "ada@example.com", "Ada Lovelace", "correct horse battery")
	tok := s.Token(t, "ada@example.com", "correct horse battery")

	parts := strings.Split(tok, ".")
	header, claims := decodeSegment(t, parts[0]), decodeSegment(t, parts[1])
	if header["alg"] != "EdDSA" || header["kid"] == "" {
		t.Fatalf("header = %v, want alg EdDSA and a kid", header)
	}
	if claims["sub"] != id || claims["email"] != "ada@example.com" || claims["name"] != "Ada Lovelace" {
		t.Fatalf("claims = %v, want sub %s and the user's email and name", claims, id)
	}
	if claims["iss"] != s.URL || claims["aud"] != s.URL {
		t.Fatalf("iss/aud = %v/%v, want %s", claims["iss"], claims["aud"], s.URL)
	}

	keys := jwks(t, s)
	if len(keys) != 1 || keys[0]["kid"] != header["kid"] {
		t.Fatalf("jwks = %v, want the one key %v", keys, header["kid"])
	}

	newKID := s.RotateKeys(t)
	if newKID == header["kid"] {
		t.Fatalf("rotation kept kid %s", newKID)
	}
	tok2 := s.Token(t, "ada@example.com", "correct horse battery")
	if got := decodeSegment(t, strings.Split(tok2, ".")[0])["kid"]; got != newKID {
		t.Fatalf("token after rotation has kid %v, want %s", got, newKID)
	}
	if keys := jwks(t, s); len(keys) != 2 {
		t.Fatalf("jwks after rotation has %d keys, want old and new", len(keys))
	}
}

// A server started with another algorithm signs with it.
func TestHarnessAlgorithm(t *testing.T) {
	s := StartWithOptions(t, Options{Alg: "ES256"})
	s.SignUp(t, "bob@example.com", "Bob", "correct horse battery")
	tok := s.Token(t, "bob@example.com", "correct horse battery")
	if alg := decodeSegment(t, strings.Split(tok, ".")[0])["alg"]; alg != "ES256" {
		t.Fatalf("alg = %v, want ES256", alg)
	}
}
