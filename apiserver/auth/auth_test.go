package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chatbackend/chatbackend/apiserver/dependency"
	"github.com/chatbackend/chatbackend/internal/betterauthtest"
)

const password = "correct horse battery staple"

// A token BetterAuth issues verifies and yields its user; every kind of bad
// token is refused with 401, the error JSON and a challenge, and is counted
// under its class. The forgeries are built from a real token and the real
// JWKS, so they differ from a good token in exactly one way.
func TestBetterAuthTokens(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ba := betterauthtest.Start(t)
	userID := ba.SignUp(t, "ada@example.com", "Ada Lovelace", password)
	token := ba.Token(t, "ada@example.com", password)
	header, payload := segments(t, token)
	realKID := header["kid"].(string)

	base := Options{JWKSURL: ba.JWKSURL, Issuer: ba.URL}
	v, reg := newVerifier(t, base)
	g.Expect(v.Ready()).To(Succeed())

	t.Run("real token", func(t *testing.T) {
		g := NewWithT(t)
		before := validations(v, ResultOK)
		res := call(v, "Bearer "+token)
		g.Expect(res.status).To(Equal(http.StatusOK), res.body)
		g.Expect(res.id).To(Equal(Identity{UserID: userID, Email: "ada@example.com", Name: "Ada Lovelace"}))
		g.Expect(validations(v, ResultOK)).To(Equal(before + 1))

		id, err := v.Verify(context.Background(), token)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(id.UserID).To(HaveLen(32), "BetterAuth ids are 32 characters")
		// The scheme is case-insensitive (RFC 7235).
		g.Expect(call(v, "bearer "+token).status).To(Equal(http.StatusOK))
	})

	// Keys of our own that BetterAuth never published.
	_, strangerKey := newEd25519(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	realClaims := jwt.MapClaims(payload)
	withClaims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range realClaims {
			c[k] = v
		}
		change(c)
		return c
	}
	// HS256 keyed with the public key: the classic algorithm-confusion forgery.
	hs256WithPublicKey := func() string {
		resp, err := http.Get(ba.JWKSURL)
		g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		var set struct {
			Keys []struct{ X string } `json:"keys"`
		}
		g.Expect(json.NewDecoder(resp.Body).Decode(&set)).To(Succeed())
		g.Expect(set.Keys).NotTo(BeEmpty())
		pub, err := base64.RawURLEncoding.DecodeString(set.Keys[0].X)
		g.Expect(err).NotTo(HaveOccurred())
		return sign(t, jwt.SigningMethodHS256, pub, map[string]any{"kid": realKID}, realClaims)
	}()
	tampered := func() string {
		parts := strings.Split(token, ".")
		claims := withClaims(func(c jwt.MapClaims) { c["email"] = "mallory@example.com"; c["sub"] = "someone-else" })
		forged := sign(t, jwt.SigningMethodEdDSA, strangerKey, nil, claims)
		// Keep BetterAuth's header and signature, swap in the edited payload.
		return parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]
	}()
	algNone := func() string {
		parts := strings.Split(sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType,
			map[string]any{"kid": realKID}, realClaims), ".")
		return parts[0] + "." + parts[1] + "."
	}()

	// Header fields that name a key by URL or embed one: a verifier that
	// followed them would let the token choose its own key. The attacker's
	// JWKS counts the fetches it gets (none expected).
	var attackerFetches atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		attackerFetches.Add(1)
		http.Error(w, "no", http.StatusNotFound)
	}))
	t.Cleanup(attacker.Close)
	strangerPub, _ := strangerKey.Public().(ed25519.PublicKey)
	strangerJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(strangerPub)}
	byStranger := func(header map[string]any) string {
		return "Bearer " + sign(t, jwt.SigningMethodEdDSA, strangerKey, header, realClaims)
	}

	cases := []struct {
		name   string
		header string // the Authorization header
		result string
	}{
		{"jku to the attacker's JWKS", byStranger(map[string]any{"kid": "attacker", "jku": attacker.URL}), ResultUnknownKey},
		{"jku with the real kid", byStranger(map[string]any{"kid": realKID, "jku": attacker.URL}), ResultBadSignature},
		{"x5u to the attacker", byStranger(map[string]any{"kid": realKID, "x5u": attacker.URL}), ResultBadSignature},
		{"embedded jwk with the real kid", byStranger(map[string]any{"kid": realKID, "jwk": strangerJWK}), ResultBadSignature},
		{"embedded jwk, no kid", byStranger(map[string]any{"jwk": strangerJWK}), ResultUnknownKey},
		{"kid path traversal", byStranger(map[string]any{"kid": "../../../../../../dev/null"}), ResultUnknownKey},
		{"kid SQL", byStranger(map[string]any{"kid": "' OR '1'='1"}), ResultUnknownKey},
		{"kid not a string", byStranger(map[string]any{"kid": 7}), ResultUnknownKey},
		{"no token", "", ResultMissing},
		{"other scheme", "Basic YWRhOnBhc3N3b3Jk", ResultMissing},
		{"empty bearer", "Bearer ", ResultMissing},
		{"garbage", "Bearer not-a-jwt", ResultMalformed},
		{"garbage segments", "Bearer a.b.c", ResultMalformed},
		{"alg none", "Bearer " + algNone, ResultBadAlgorithm},
		{"HS256 keyed with the public key", "Bearer " + hs256WithPublicKey, ResultBadAlgorithm},
		{"key not in the JWKS", "Bearer " + sign(t, jwt.SigningMethodEdDSA, strangerKey, map[string]any{"kid": "made-up-kid"}, realClaims), ResultUnknownKey},
		{"no kid", "Bearer " + sign(t, jwt.SigningMethodEdDSA, strangerKey, nil, realClaims), ResultUnknownKey},
		{"real kid, other key", "Bearer " + sign(t, jwt.SigningMethodEdDSA, strangerKey, map[string]any{"kid": realKID}, realClaims), ResultBadSignature},
		{"tampered payload", "Bearer " + tampered, ResultBadSignature},
		{"allowed alg the key is not for", "Bearer " + sign(t, jwt.SigningMethodES256, ecKey, map[string]any{"kid": realKID}, realClaims), ResultBadAlgorithm},
		{"truncated signature", "Bearer " + token[:len(token)-4], ResultBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			before := validations(v, tc.result)
			res := call(v, tc.header)
			g.Expect(res.status).To(Equal(http.StatusUnauthorized))
			g.Expect(res.body).To(MatchJSON(`{"error":{"code":"unauthorized","message":"invalid token: ` + messages[tc.result] + `"}}`))
			if tc.result == ResultMissing {
				g.Expect(res.auth).To(HavePrefix("Bearer"))
				g.Expect(res.auth).NotTo(ContainSubstring("error="))
			} else {
				g.Expect(res.auth).To(Equal(`Bearer error="invalid_token"`))
			}
			g.Expect(validations(v, tc.result)).To(Equal(before+1), "counted as %s", tc.result)
		})
	}

	g.Expect(attackerFetches.Load()).To(BeZero(), "a token's jku/x5u is never fetched")

	// The same real token, judged by verifiers pinned to something else.
	t.Run("wrong issuer", func(t *testing.T) {
		opts := base
		opts.Issuer, opts.Audience = "https://auth.other.example", ba.URL
		expectRejected(t, opts, token, ResultBadIssuer)
	})
	t.Run("wrong audience", func(t *testing.T) {
		opts := base
		opts.Audience = "https://api.other.example"
		expectRejected(t, opts, token, ResultBadAudience)
	})
	t.Run("algorithm outside the allowlist", func(t *testing.T) {
		opts := base
		opts.Algorithms = []string{"ES256", "RS256"}
		expectRejected(t, opts, token, ResultBadAlgorithm)
	})

	t.Run("metrics", func(t *testing.T) {
		g := NewWithT(t)
		n, err := testutil.GatherAndCount(reg,
			"chatbackend_token_validations_total", "chatbackend_jwks_refresh_total",
			"chatbackend_jwks_last_success_timestamp_seconds", "chatbackend_jwks_keys")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(n).To(Equal(len(allResults) + 2 + 1 + 1))
		g.Expect(testutil.ToFloat64(v.metrics.keys)).To(Equal(1.0))
		g.Expect(testutil.ToFloat64(v.metrics.lastSuccess)).To(BeNumerically("~", float64(time.Now().Unix()), 120))
		g.Expect(refreshes(v, "error")).To(BeZero())
	})
}

func expectRejected(t *testing.T, opts Options, token, result string) {
	t.Helper()
	g := NewWithT(t)
	v, _ := newVerifier(t, opts)
	res := call(v, "Bearer "+token)
	g.Expect(res.status).To(Equal(http.StatusUnauthorized))
	g.Expect(res.body).To(ContainSubstring(messages[result]))
	g.Expect(res.auth).To(Equal(`Bearer error="invalid_token"`))
	g.Expect(validations(v, result)).To(Equal(1.0))
	g.Expect(validations(v, ResultOK)).To(BeZero())
}

// BetterAuth configured for ES256: its tokens verify under the default
// allowlist and are refused when only EdDSA is allowed.
func TestBetterAuthES256(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ba := betterauthtest.StartWithOptions(t, betterauthtest.Options{Alg: "ES256"})
	id := ba.SignUp(t, "es@example.com", "Elliptic", password)
	token := ba.Token(t, "es@example.com", password)

	v, _ := newVerifier(t, Options{JWKSURL: ba.JWKSURL, Issuer: ba.URL})
	got, err := v.Verify(context.Background(), token)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.UserID).To(Equal(id))

	expectRejected(t, Options{JWKSURL: ba.JWKSURL, Issuer: ba.URL, Algorithms: []string{"EdDSA"}}, token, ResultBadAlgorithm)
}

// Time and claim rules, on tokens signed by a key served from a local JWKS:
// waiting for a real token to expire would take minutes.
func TestClaimRules(t *testing.T) {
	pub, priv := newEd25519(t)
	const kid, iss, aud = "test-key", "https://auth.example", "https://api.example"
	srv := staticJWKS(t, map[string]ed25519.PublicKey{kid: pub})
	v, _ := newVerifier(t, Options{JWKSURL: srv.URL, Issuer: iss, Audience: aud, Leeway: 30 * time.Second, MaxTokenAge: time.Hour})

	now := time.Now()
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "user-1", "email": "u@example.com", "name": "U", "iss": iss, "aud": aud,
			"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix()}
		if change != nil {
			change(c)
		}
		return c
	}
	cases := []struct {
		name   string
		claims jwt.MapClaims
		result string
		header map[string]any // added to the kid
	}{
		{"valid", claims(nil), ResultOK, nil},
		{"aud as array", claims(func(c jwt.MapClaims) { c["aud"] = []string{"https://other", aud} }), ResultOK, nil},
		{"expired within the leeway", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }), ResultOK, nil},
		{"expired", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() }), ResultExpired, nil},
		{"not yet valid", claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() }), ResultExpired, nil},
		{"no exp", claims(func(c jwt.MapClaims) { delete(c, "exp") }), ResultMalformed, nil},
		{"no sub", claims(func(c jwt.MapClaims) { delete(c, "sub") }), ResultMalformed, nil},
		{"no iss", claims(func(c jwt.MapClaims) { delete(c, "iss") }), ResultBadIssuer, nil},
		{"wrong iss", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), ResultBadIssuer, nil},
		{"no aud", claims(func(c jwt.MapClaims) { delete(c, "aud") }), ResultBadAudience, nil},
		{"aud array without ours", claims(func(c jwt.MapClaims) { c["aud"] = []string{"https://a", "https://b"} }), ResultBadAudience, nil},
		{"email of the wrong type", claims(func(c jwt.MapClaims) { c["email"] = 42 }), ResultMalformed, nil},
		{"exp as a string", claims(func(c jwt.MapClaims) { c["exp"] = fmt.Sprint(now.Add(time.Minute).Unix()) }), ResultMalformed, nil},
		{"exp as a date", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(time.Minute).Format(time.RFC3339) }), ResultMalformed, nil},
		{"crit header", claims(nil), ResultMalformed, map[string]any{"crit": []string{"exp"}}},
		{"crit extension", claims(nil), ResultMalformed, map[string]any{"crit": []string{"x-acme"}, "x-acme": true}},
		{"iat in the future", claims(func(c jwt.MapClaims) { c["iat"] = now.Add(10 * time.Minute).Unix() }), ResultExpired, nil},
		{"lifetime at the maximum", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(time.Hour).Unix() }), ResultOK, nil},
		{"lifetime of a year", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(365 * 24 * time.Hour).Unix() }), ResultBadLifetime, nil},
		{"lifetime over the maximum, iat in the past", claims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-50*time.Minute).Unix(), now.Add(20*time.Minute).Unix()
		}), ResultBadLifetime, nil},
		{"no iat, exp beyond the maximum", claims(func(c jwt.MapClaims) {
			delete(c, "iat")
			c["exp"] = now.Add(2 * time.Hour).Unix()
		}), ResultBadLifetime, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			before := validations(v, tc.result)
			header := map[string]any{"kid": kid}
			maps.Copy(header, tc.header)
			tok := sign(t, jwt.SigningMethodEdDSA, priv, header, tc.claims)
			_, err := v.Verify(context.Background(), tok)
			if tc.result == ResultOK {
				g.Expect(err).NotTo(HaveOccurred())
			} else {
				var authErr *Error
				g.Expect(errors.As(err, &authErr)).To(BeTrue(), "error %v is not an *auth.Error", err)
				g.Expect(authErr.Result).To(Equal(tc.result))
				g.Expect(err.Error()).NotTo(ContainSubstring(tok))
			}
			g.Expect(validations(v, tc.result)).To(Equal(before + 1))
		})
	}
}

// A token over MaxTokenBytes is not parsed: 431 in the error JSON (a 401
// would send the client to sign in again for the same token), counted as
// malformed. One at the limit is parsed (and judged on its merits).
func TestTokenSizeLimit(t *testing.T) {
	g := NewWithT(t)
	pub, priv := newEd25519(t)
	srv := staticJWKS(t, map[string]ed25519.PublicKey{"k": pub})
	const iss = "https://auth.example"
	v, _ := newVerifier(t, Options{JWKSURL: srv.URL, Issuer: iss})
	token := func(nameLen int) string {
		return sign(t, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": "k"}, jwt.MapClaims{
			"sub": "u", "iss": iss, "aud": iss, "exp": time.Now().Add(time.Minute).Unix(),
			"name": strings.Repeat("n", nameLen)})
	}
	fits := token(20_000)
	g.Expect(len(fits)).To(BeNumerically("<=", MaxTokenBytes))
	g.Expect(call(v, "Bearer "+fits).status).To(Equal(http.StatusOK))

	before := validations(v, ResultMalformed)
	big := token(25_000)
	g.Expect(len(big)).To(BeNumerically(">", MaxTokenBytes))
	res := call(v, "Bearer "+big)
	g.Expect(res.status).To(Equal(http.StatusRequestHeaderFieldsTooLarge))
	g.Expect(res.body).To(ContainSubstring(`"code":"header_too_large"`))
	g.Expect(validations(v, ResultMalformed)).To(Equal(before + 1))
}

// When BetterAuth starts signing with a new key, its tokens are accepted
// without restarting the verifier; when the JWKS endpoint goes away, tokens
// of keys already fetched keep passing and the failed fetches are counted.
func TestKeyRotationAndOutage(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ba := betterauthtest.Start(t)
	ba.SignUp(t, "rot@example.com", "Rot", password)
	oldToken := ba.Token(t, "rot@example.com", password)
	proxy := betterauthtest.NewJWKSProxy(t, ba.URL)
	// No background refresh during the test: a new key can only arrive
	// through the unknown-kid refetch, which is not rate limited here
	// (TestUnknownKIDRefetchRateLimited covers that).
	v, _ := newVerifier(t, Options{JWKSURL: proxy.JWKSURL, Issuer: ba.URL, RefreshInterval: time.Hour, RefetchSpacing: time.Millisecond})
	g.Expect(v.Ready()).To(Succeed())
	g.Expect(call(v, "Bearer "+oldToken).status).To(Equal(http.StatusOK))
	g.Expect(proxy.Fetches()).To(Equal(int64(1)))

	newKID := ba.RotateKeys(t)
	newToken := ba.Token(t, "rot@example.com", password)
	h, _ := segments(t, newToken)
	g.Expect(h["kid"]).To(Equal(newKID))
	g.Expect(call(v, "Bearer "+newToken).status).To(Equal(http.StatusOK), "the rotated key is fetched on first sight")
	g.Expect(proxy.Fetches()).To(Equal(int64(2)))
	g.Expect(call(v, "Bearer "+oldToken).status).To(Equal(http.StatusOK), "the old key stays published")
	g.Expect(testutil.ToFloat64(v.metrics.keys)).To(Equal(2.0))

	// A second verifier refreshing in the background, to watch those
	// refreshes fail during the outage.
	bg, _ := newVerifier(t, Options{JWKSURL: proxy.JWKSURL, Issuer: ba.URL, RefreshInterval: 100 * time.Millisecond})
	g.Expect(bg.Ready()).To(Succeed())

	proxy.SetFault(betterauthtest.Drop)
	g.Eventually(func() float64 { return refreshes(bg, "error") }, 15*time.Second, 20*time.Millisecond).
		Should(BeNumerically(">=", 2), "background refreshes fail and are counted")
	for _, verifier := range []*Verifier{v, bg} {
		for _, tok := range []string{oldToken, newToken} {
			g.Expect(call(verifier, "Bearer "+tok).status).To(Equal(http.StatusOK), "cached keys keep working while the JWKS is unreachable")
		}
		g.Expect(verifier.Ready()).To(Succeed(), "readiness means loaded once, not reachable now")
		g.Expect(testutil.ToFloat64(verifier.metrics.keys)).To(Equal(2.0))
	}

	// Another rotation during the outage: the refetch fails, is counted, and
	// the token is refused as signed by an unknown key.
	ba.RotateKeys(t)
	newestToken := ba.Token(t, "rot@example.com", password)
	errorsBefore := refreshes(v, "error")
	res := call(v, "Bearer "+newestToken)
	g.Expect(res.status).To(Equal(http.StatusUnauthorized))
	g.Expect(res.body).To(ContainSubstring(messages[ResultUnknownKey]))
	g.Expect(refreshes(v, "error")).To(Equal(errorsBefore + 1))

	// Back up: the background refresh alone brings the newest key in.
	proxy.SetFault(betterauthtest.Healthy)
	g.Eventually(func() float64 { return testutil.ToFloat64(bg.metrics.keys) }, 15*time.Second, 20*time.Millisecond).
		Should(Equal(3.0))
	g.Expect(call(bg, "Bearer "+newestToken).status).To(Equal(http.StatusOK))
}

// A flood of tokens with made-up kids costs one JWKS refetch per spacing,
// however many and however concurrent.
func TestUnknownKIDRefetchRateLimited(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ba := betterauthtest.Start(t)
	ba.SignUp(t, "rl@example.com", "RL", password)
	token := ba.Token(t, "rl@example.com", password)
	proxy := betterauthtest.NewJWKSProxy(t, ba.URL)
	v, _ := newVerifier(t, Options{JWKSURL: proxy.JWKSURL, Issuer: ba.URL, RefreshInterval: time.Hour, RefetchSpacing: time.Hour})
	g.Expect(proxy.Fetches()).To(Equal(int64(1)), "the initial fetch")

	_, priv := newEd25519(t)
	_, payload := segments(t, token)
	forged := make([]string, 50)
	for i := range forged {
		forged[i] = sign(t, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": fmt.Sprintf("made-up-%d", i)}, payload)
	}
	var wg sync.WaitGroup
	for _, tok := range forged {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := call(v, "Bearer "+tok); res.status != http.StatusUnauthorized {
				t.Errorf("made-up kid answered %d", res.status)
			}
		}()
	}
	wg.Wait()
	g.Expect(validations(v, ResultUnknownKey)).To(Equal(50.0))
	g.Expect(proxy.Fetches()).To(Equal(int64(2)), "one refetch for all unknown kids")
	g.Expect(call(v, "Bearer "+token).status).To(Equal(http.StatusOK))
	g.Expect(proxy.Fetches()).To(Equal(int64(2)), "known kids need no fetch")
}

// A probe with a made-up kid just before BetterAuth rotates its key must
// not lock the new key out: with the default spacing the token of the new
// key waits for the next refetch (a few seconds) instead of being refused
// until a whole spacing has passed.
func TestUnknownKIDProbeDoesNotHoldBackARotation(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ba := betterauthtest.Start(t)
	ba.SignUp(t, "probe@example.com", "Probe", password)
	token := ba.Token(t, "probe@example.com", password)
	proxy := betterauthtest.NewJWKSProxy(t, ba.URL)
	v, _ := newVerifier(t, Options{JWKSURL: proxy.JWKSURL, Issuer: ba.URL, RefreshInterval: time.Hour})

	_, priv := newEd25519(t)
	_, payload := segments(t, token)
	probe := sign(t, jwt.SigningMethodEdDSA, priv, map[string]any{"kid": "made-up"}, payload)
	g.Expect(call(v, "Bearer "+probe).status).To(Equal(http.StatusUnauthorized))
	g.Expect(proxy.Fetches()).To(Equal(int64(2)), "the probe spent a refetch")

	ba.RotateKeys(t)
	rotated := ba.Token(t, "probe@example.com", password)
	start := time.Now()
	g.Expect(call(v, "Bearer "+rotated).status).To(Equal(http.StatusOK), "the new key is picked up despite the probe")
	g.Expect(time.Since(start)).To(BeNumerically("<", defaultRefetchSpacing+FetchTimeout))
	g.Expect(proxy.Fetches()).To(Equal(int64(3)))
}

// Readiness waits for the first successful JWKS fetch, which the background
// loop retries quickly when BetterAuth is not up yet.
func TestReadyAfterJWKSComesUp(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ba := betterauthtest.Start(t)
	proxy := betterauthtest.NewJWKSProxy(t, ba.URL)
	proxy.SetFault(betterauthtest.Drop)
	v, _ := newVerifier(t, Options{JWKSURL: proxy.JWKSURL, Issuer: ba.URL})
	g.Expect(v.Ready()).To(MatchError(ContainSubstring("not loaded yet")))
	g.Expect(refreshes(v, "error")).To(BeNumerically(">=", 1))

	proxy.SetFault(betterauthtest.Healthy)
	g.Eventually(v.Ready, 15*time.Second, 50*time.Millisecond).Should(Succeed())
	g.Expect(refreshes(v, "success")).To(Equal(1.0))
}

// chatbackend_dependency_up{dependency="jwks"}, which
// ChatBackendDependencyDown watches, follows every JWKS fetch: 1 once the
// keys load from BetterAuth, 0 while its JWKS endpoint answers 500 or drops
// the connection, 1 again when it recovers.
func TestJWKSDependencyGauge(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ba := betterauthtest.Start(t)
	proxy := betterauthtest.NewJWKSProxy(t, ba.URL)
	reg := prometheus.NewRegistry()
	deps, err := dependency.New(reg)
	g.Expect(err).NotTo(HaveOccurred())
	// No background refresh: each fetch below is the test's own.
	v, _ := newVerifier(t, Options{JWKSURL: proxy.JWKSURL, Issuer: ba.URL, RefreshInterval: time.Hour, Dependencies: deps})
	jwksUp := func(want int) error {
		return testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP chatbackend_dependency_up 1 if the last check of the dependency (database, jwks, vector_store, llm) succeeded, 0 if it failed.
# TYPE chatbackend_dependency_up gauge
chatbackend_dependency_up{dependency="jwks"} %d
`, want)), dependency.MetricName)
	}
	g.Expect(v.Ready()).To(Succeed())
	g.Expect(jwksUp(1)).To(Succeed(), "the JWKS loaded at start")

	for _, outage := range []struct {
		name  string
		start func()
	}{
		{"500", func() { proxy.SetFault(betterauthtest.Status500) }},
		{"connection dropped", func() { proxy.SetFault(betterauthtest.Drop) }},
	} {
		outage.start()
		g.Expect(v.store.refresh()).To(HaveOccurred(), outage.name)
		g.Expect(jwksUp(0)).To(Succeed(), outage.name)
		proxy.SetFault(betterauthtest.Healthy)
		g.Expect(v.store.refresh()).To(Succeed(), "after "+outage.name)
		g.Expect(jwksUp(1)).To(Succeed(), "recovered after "+outage.name)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string]Options{
		"no JWKS URL":       {Issuer: "https://a"},
		"relative JWKS URL": {JWKSURL: "/api/auth/jwks", Issuer: "https://a"},
		"no issuer":         {JWKSURL: "https://a/api/auth/jwks"},
		"HS256 allowed":     {JWKSURL: "https://a/api/auth/jwks", Issuer: "https://a", Algorithms: []string{"EdDSA", "HS256"}},
		"none allowed":      {JWKSURL: "https://a/api/auth/jwks", Issuer: "https://a", Algorithms: []string{"none"}},
		"leeway too long":   {JWKSURL: "https://a/api/auth/jwks", Issuer: "https://a", Leeway: 2 * time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			if v, err := New(context.Background(), opts); err == nil {
				v.Close()
				t.Fatal("New accepted bad options")
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	for header, want := range map[string]string{
		"":               "",
		"Bearer abc":     "abc",
		"bearer abc":     "abc",
		"BEARER  abc ":   "abc",
		"Basic abc":      "",
		"Bearer":         "",
		"Bearerabc":      "",
		"Token abc.def":  "",
		" Bearer  a.b.c": "a.b.c",
	} {
		if got := bearerToken(header); got != want {
			t.Errorf("bearerToken(%q) = %q, want %q", header, got, want)
		}
	}
}
