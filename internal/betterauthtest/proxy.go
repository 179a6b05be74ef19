package betterauthtest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
)

// Fault is how a JWKSProxy misbehaves.
type Fault int32

// The faults of a JWKS endpoint that a server must survive.
const (
	// Healthy passes requests to BetterAuth.
	Healthy Fault = iota
	// Drop closes the connection without an answer, like a dead upstream
	// behind an ingress.
	Drop
	// Hang accepts the request and never answers (until the client gives
	// up or the proxy closes).
	Hang
	// Status500 answers 500.
	Status500
	// Garbage answers 200 with a body that is not JSON.
	Garbage
	// EmptySet answers 200 with a valid JWKS holding no key.
	EmptySet
)

// JWKSProxy is a reverse proxy in front of a BetterAuth that counts the
// requests and can play a sick JWKS endpoint (SetFault).
type JWKSProxy struct {
	// URL is the proxy's base URL; JWKSURL its JWKS, to give a verifier.
	URL, JWKSURL string

	fetches atomic.Int64
	fault   atomic.Int32
	closing chan struct{}
}

// NewJWKSProxy proxies to target (a BetterAuth base URL) until t ends.
func NewJWKSProxy(t testing.TB, target string) *JWKSProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("betterauthtest: proxy target: %v", err)
	}
	p := &JWKSProxy{closing: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		switch Fault(p.fault.Load()) {
		case Healthy:
			rp.ServeHTTP(w, r)
		case Drop:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			w.WriteHeader(http.StatusBadGateway)
		case Hang:
			select {
			case <-r.Context().Done():
			case <-p.closing:
			}
		case Status500:
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		case Garbage:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("<html>502 Bad Gateway</html>\x00\xff"))
		case EmptySet:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"keys":[]}`))
		}
	}))
	// Hanging handlers return first: Close waits for them.
	t.Cleanup(func() { close(p.closing); srv.Close() })
	p.URL = srv.URL
	p.JWKSURL = srv.URL + "/api/auth/jwks"
	return p
}

// SetFault makes the requests that follow misbehave as f (Healthy: not).
func (p *JWKSProxy) SetFault(f Fault) { p.fault.Store(int32(f)) }

// Fetches counts the requests the proxy received.
func (p *JWKSProxy) Fetches() int64 { return p.fetches.Load() }
