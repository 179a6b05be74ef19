package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func init() { gin.SetMode(gin.TestMode) }

// newVerifier builds a Verifier with its own metrics registry and closes it
// when the test ends.
func newVerifier(t testing.TB, opts Options) (*Verifier, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(v.Close)
	return v, reg
}

// validations reads chatbackend_token_validations_total{result}.
func validations(v *Verifier, result string) float64 {
	return testutil.ToFloat64(v.metrics.validations.WithLabelValues(result))
}

func refreshes(v *Verifier, result string) float64 {
	return testutil.ToFloat64(v.metrics.refreshes.WithLabelValues(result))
}

// response is what the tiny gin engine answered.
type response struct {
	status int
	body   string
	auth   string // WWW-Authenticate
	id     Identity
}

// call sends GET /me with the Authorization header (none when empty) through
// the middleware on a minimal engine that echoes the identity.
func call(v *Verifier, authorization string) response {
	r := gin.New()
	r.GET("/me", v.Middleware(), func(c *gin.Context) {
		id, ok := IdentityFrom(c)
		if !ok {
			c.Status(http.StatusInternalServerError)
			return
		}
		c.JSON(http.StatusOK, id)
	})
	req := httptest.NewRequest(http.MethodGet, "/me", nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	out := response{status: rec.Code, body: rec.Body.String(), auth: rec.Header().Get("WWW-Authenticate")}
	if rec.Code == http.StatusOK {
		_ = json.Unmarshal(rec.Body.Bytes(), &out.id)
	}
	return out
}

// segments decodes a JWT's header and payload without verifying it.
func segments(t *testing.T, token string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("decode segment: %v", err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("unmarshal segment: %v", err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

// sign makes a token with method, header fields and claims.
func sign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func newEd25519(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// staticJWKS serves a JWKS holding the given Ed25519 public keys.
func staticJWKS(t testing.TB, keys map[string]ed25519.PublicKey) *httptest.Server {
	t.Helper()
	body := jwksBody(t, keys)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// jwksBody is a JWKS holding the given Ed25519 public keys.
func jwksBody(t testing.TB, keys map[string]ed25519.PublicKey) []byte {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, pub := range keys {
		set.Keys = append(set.Keys, map[string]string{
			"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": kid,
			"x": base64.RawURLEncoding.EncodeToString(pub),
		})
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return body
}
