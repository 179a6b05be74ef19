package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"
)

const cacheIssuer = "https://auth.example"

// swappableJWKS serves whichever JWKS was set last.
func swappableJWKS(t *testing.T, body []byte) (*httptest.Server, *atomic.Pointer[[]byte]) {
	t.Helper()
	var cur atomic.Pointer[[]byte]
	cur.Store(&body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*cur.Load())
	}))
	t.Cleanup(srv.Close)
	return srv, &cur
}

func edToken(t *testing.T, priv ed25519.PrivateKey, kid string, exp time.Time) string {
	t.Helper()
	return sign(t, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": kid}, jwt.MapClaims{
		"sub": "user-1", "email": "u@example.com", "name": "U", "iss": cacheIssuer, "aud": cacheIssuer,
		"iat": time.Now().Unix(), "exp": exp.Unix(),
	})
}

func resultOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Result
	}
	if err != nil {
		return err.Error()
	}
	return ResultOK
}

// A token verified once is answered from the cache (counted as ok like any
// other), and tokens that failed are never stored with them.
func TestVerifiedTokensAreCached(t *testing.T) {
	g := NewWithT(t)
	pub, priv := newEd25519(t)
	_, other := newEd25519(t)
	srv := staticJWKS(t, map[string]ed25519.PublicKey{"k1": pub})
	v, _ := newVerifier(t, Options{JWKSURL: srv.URL, Issuer: cacheIssuer, RefreshInterval: time.Hour})
	ctx := context.Background()
	good := edToken(t, priv, "k1", time.Now().Add(time.Hour))
	forged := edToken(t, other, "k1", time.Now().Add(time.Hour))

	for range 3 {
		id, err := v.Verify(ctx, good)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(id).To(Equal(Identity{UserID: "user-1", Email: "u@example.com", Name: "U"}))
	}
	g.Expect(v.cache.entries.Len()).To(Equal(1))
	g.Expect(validations(v, ResultOK)).To(Equal(3.0))

	for range 3 {
		_, err := v.Verify(ctx, forged)
		g.Expect(resultOf(err)).To(Equal(ResultBadSignature))
	}
	g.Expect(v.cache.entries.Len()).To(Equal(1), "a rejected token is not stored with the verified ones")
	g.Expect(v.cache.rejected.Len()).To(Equal(1), "its verdict is, apart")
	g.Expect(validations(v, ResultBadSignature)).To(Equal(3.0), "a remembered rejection is counted like any other")
}

// A rejection is remembered only while the JWKS stays the same: a token
// refused for its signature verifies once the JWKS publishes its key under
// that kid. Verdicts that time or a refetch can change (unknown_key,
// expired) are not remembered.
func TestRejectedTokensAreCachedPerJWKSGeneration(t *testing.T) {
	g := NewWithT(t)
	oldPub, _ := newEd25519(t)
	newPub, newPriv := newEd25519(t)
	srv, jwks := swappableJWKS(t, jwksBody(t, map[string]ed25519.PublicKey{"k1": oldPub}))
	v, _ := newVerifier(t, Options{JWKSURL: srv.URL, Issuer: cacheIssuer, RefreshInterval: time.Hour, RefetchSpacing: time.Hour})
	ctx := context.Background()
	token := edToken(t, newPriv, "k1", time.Now().Add(time.Hour))
	for range 2 {
		_, err := v.Verify(ctx, token)
		g.Expect(resultOf(err)).To(Equal(ResultBadSignature))
	}
	g.Expect(v.cache.rejected.Len()).To(Equal(1))

	body := jwksBody(t, map[string]ed25519.PublicKey{"k1": newPub})
	jwks.Store(&body)
	g.Expect(v.store.refresh()).To(Succeed())
	g.Expect(v.cache.rejected.Len()).To(BeZero())
	_, err := v.Verify(ctx, token)
	g.Expect(err).NotTo(HaveOccurred(), "verified against the new JWKS, not answered from the old verdict")

	unknown := edToken(t, newPriv, "k9", time.Now().Add(time.Hour))
	expired := edToken(t, newPriv, "k1", time.Now().Add(-time.Hour))
	for range 2 {
		_, err = v.Verify(ctx, unknown)
		g.Expect(resultOf(err)).To(Equal(ResultUnknownKey))
		_, err = v.Verify(ctx, expired)
		g.Expect(resultOf(err)).To(Equal(ResultExpired))
	}
	g.Expect(v.cache.rejected.Len()).To(BeZero())
}

// A cached token serves exactly as long as the parser would accept it:
// until exp plus the leeway, then it is refused as expired.
func TestCachedTokenRefusedOnceExpired(t *testing.T) {
	g := NewWithT(t)
	pub, priv := newEd25519(t)
	srv := staticJWKS(t, map[string]ed25519.PublicKey{"k1": pub})
	v, _ := newVerifier(t, Options{JWKSURL: srv.URL, Issuer: cacheIssuer, RefreshInterval: time.Hour, Leeway: 10 * time.Second})
	ctx := context.Background()
	exp := time.Now().Add(time.Minute).Truncate(time.Second)
	token := edToken(t, priv, "k1", exp)

	_, err := v.Verify(ctx, token)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v.cache.entries.Len()).To(Equal(1))

	v.now = func() time.Time { return exp.Add(10*time.Second - time.Millisecond) }
	_, err = v.Verify(ctx, token)
	g.Expect(err).NotTo(HaveOccurred(), "within the leeway after exp")

	v.now = func() time.Time { return exp.Add(10 * time.Second) }
	_, err = v.Verify(ctx, token)
	g.Expect(resultOf(err)).To(Equal(ResultExpired), "expired, though verified and cached before")
	g.Expect(v.cache.entries.Len()).To(BeZero())
}

// Once the JWKS no longer holds a key, the tokens it signed are refused
// from the refresh on, cached or not; tokens of the keys still published
// verify again and are cached again.
func TestCachedTokenRefusedAfterKeyRemoval(t *testing.T) {
	g := NewWithT(t)
	pub1, priv1 := newEd25519(t)
	pub2, priv2 := newEd25519(t)
	srv, jwks := swappableJWKS(t, jwksBody(t, map[string]ed25519.PublicKey{"k1": pub1, "k2": pub2}))
	v, _ := newVerifier(t, Options{JWKSURL: srv.URL, Issuer: cacheIssuer, RefreshInterval: time.Hour})
	ctx := context.Background()
	old := edToken(t, priv1, "k1", time.Now().Add(time.Hour))
	kept := edToken(t, priv2, "k2", time.Now().Add(time.Hour))
	for _, tok := range []string{old, kept} {
		_, err := v.Verify(ctx, tok)
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(v.cache.entries.Len()).To(Equal(2))

	// An unchanged JWKS keeps the cache.
	g.Expect(v.store.refresh()).To(Succeed())
	g.Expect(v.cache.entries.Len()).To(Equal(2))

	body := jwksBody(t, map[string]ed25519.PublicKey{"k2": pub2})
	jwks.Store(&body)
	g.Expect(v.store.refresh()).To(Succeed())
	_, err := v.Verify(ctx, old)
	g.Expect(resultOf(err)).To(Equal(ResultUnknownKey), "the removed key's token is refused")
	_, err = v.Verify(ctx, kept)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v.cache.entries.Len()).To(Equal(1))
}

// A token whose verification began before a JWKS change is not stored
// under the new generation.
func TestVerificationDuringKeyChangeIsNotCached(t *testing.T) {
	g := NewWithT(t)
	c := newTokenCache(10, 10)
	gen := c.generation.Load()
	c.keysChanged()
	c.put([32]byte{1}, Identity{UserID: "u"}, time.Now().Add(time.Hour), gen)
	_, ok := c.get([32]byte{1}, time.Now())
	g.Expect(ok).To(BeFalse())
}
