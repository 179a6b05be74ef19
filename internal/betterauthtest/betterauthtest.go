// Package betterauthtest runs the real BetterAuth server of hack/betterauth
// (npm better-auth with its jwt plugin and memory adapter) for tests, so the
// API server's JWT verification is tested against the tokens and JWKS that
// production clients actually get, not against a re-implementation.
//
// It needs node on PATH and hack/betterauth/node_modules (`make test-deps`).
package betterauthtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatbackend/chatbackend/internal/nodetest"
)

// program is hack/betterauth. A cold start on a busy 2-core machine takes a
// couple of seconds: the wait for its ready line is bounded at a minute.
var program = nodetest.Program{
	Name:         "betterauth",
	Script:       "server.mjs",
	Module:       "better-auth",
	ReadyPrefix:  "betterauth listening on ",
	StartTimeout: 60 * time.Second,
}

// Server is one running BetterAuth process. Every Server has its own memory
// database, so users and keys never leak between tests.
type Server struct {
	// URL is the base URL; it is also the iss and aud of the tokens.
	URL string
	// JWKSURL is where the jwt plugin serves its public keys.
	JWKSURL string

	client *http.Client
}

// Options tune the server for a test.
type Options struct {
	// Alg is the jwt plugin's signing algorithm (JWT_ALG): EdDSA when empty,
	// or ES256, ES512, RS256, PS256.
	Alg string
	// Expiration is the token lifetime in better-auth's notation ("15m" when
	// empty, "5s", ...).
	Expiration string
	// TrustedOrigins are browser origins allowed to call the auth routes with
	// credentials.
	TrustedOrigins []string
	// Host is the listen address: 127.0.0.1 when empty. The cluster test
	// uses the node's host address so pods reach the server.
	Host string
}

// Start runs a BetterAuth server with the defaults (EdDSA, 15 min tokens)
// and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWithOptions(t, Options{})
}

// StartWithOptions runs a BetterAuth server configured by o and stops it when
// the test ends.
func StartWithOptions(t testing.TB, o Options) *Server {
	t.Helper()
	env := []string{
		"BETTERAUTH_TEST_ADMIN=1",
		"BETTER_AUTH_URL=", // derived from the chosen port
		"JWT_ALG=" + o.Alg,
		"JWT_EXPIRATION=" + o.Expiration,
		"TRUSTED_ORIGINS=" + strings.Join(o.TrustedOrigins, ","),
	}
	if o.Host != "" {
		env = append(env, "HOST="+o.Host)
	}
	p := nodetest.Start(t, program, env...)
	return &Server{
		URL:     p.URL,
		JWKSURL: p.URL + "/api/auth/jwks",
		client:  &http.Client{Timeout: 30 * time.Second},
	}
}

// SignUp creates a user with email and password and returns their id (the
// tokens' sub).
func (s *Server) SignUp(t testing.TB, email, name, password string) string {
	t.Helper()
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	s.postJSON(t, "/api/auth/sign-up/email", map[string]string{"email": email, "name": name, "password": password}, &out)
	if out.User.ID == "" {
		t.Fatalf("betterauthtest: sign-up of %s returned no user id", email)
	}
	return out.User.ID
}

// Token signs in with email and password and returns a JWT from the jwt
// plugin's GET /api/auth/token, exactly as a browser client obtains one.
func (s *Server) Token(t testing.TB, email, password string) string {
	t.Helper()
	cookies := s.postJSON(t, "/api/auth/sign-in/email", map[string]string{"email": email, "password": password}, nil)
	if len(cookies) == 0 {
		t.Fatalf("betterauthtest: sign-in of %s set no session cookie", email)
	}

	req, err := http.NewRequest(http.MethodGet, s.URL+"/api/auth/token", nil)
	if err != nil {
		t.Fatalf("betterauthtest: %v", err)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	var out struct {
		Token string `json:"token"`
	}
	s.do(t, req, &out)
	if strings.Count(out.Token, ".") != 2 {
		t.Fatalf("betterauthtest: GET /api/auth/token for %s returned no JWT", email)
	}
	return out.Token
}

// RotateKeys makes BetterAuth sign with a newly created key; the old key stays
// in the JWKS. It returns the new key id.
func (s *Server) RotateKeys(t testing.TB) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/__test/rotate-keys", nil)
	if err != nil {
		t.Fatalf("betterauthtest: %v", err)
	}
	var out struct {
		KID string `json:"kid"`
	}
	s.do(t, req, &out)
	if out.KID == "" {
		t.Fatalf("betterauthtest: key rotation returned no kid")
	}
	return out.KID
}

func (s *Server) postJSON(t testing.TB, path string, body any, out any) []*http.Cookie {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("betterauthtest: %v", err)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("betterauthtest: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return s.do(t, req, out)
}

// do sends req, fails the test unless it answers 200, decodes the body into
// out when out is not nil and returns the cookies the answer set (a sign-in's
// session). The response itself never leaves do, so its body is always closed.
func (s *Server) do(t testing.TB, req *http.Request, out any) []*http.Cookie {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := s.client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("betterauthtest: %s %s: %v", req.Method, req.URL.Path, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		t.Fatalf("betterauthtest: %s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("betterauthtest: %s %s answered %d: %s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("betterauthtest: %s %s: decode %q: %v", req.Method, req.URL.Path, body, err)
		}
	}
	return resp.Cookies()
}
