package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/chatbackend/chatbackend/apiserver/dependency"
)

// maxJWKSBytes bounds the JWKS response; a real set is a few hundred bytes.
const maxJWKSBytes = 1 << 20

// maxRefetchWait bounds how long a token with an unknown kid waits for the
// refetch limiter's next slot; beyond it (a spacing longer than this) the
// token is refused at once with errRefetchLimited.
const maxRefetchWait = 5 * time.Second

// errRefetchLimited is returned for an unknown kid while the rate limiter
// holds back another JWKS fetch for longer than maxRefetchWait.
var errRefetchLimited = errors.New("JWKS refetch rate limited")

// keyStore is the jwkset.Storage behind keyfunc: the keys of the last good
// JWKS fetch, kept in a jwkset memory store.
//
// It fetches by itself instead of using jwkset's HTTP storage because the
// server needs what that storage does not offer: an observable result of
// every fetch (metrics, readiness), a quick retry until the first success
// (BetterAuth may start after us), and an unknown-kid refetch shared by
// every request that waits for it and bounded by the request's context.
//
// A failed fetch leaves the cached keys untouched, so tokens of known keys
// keep verifying while BetterAuth is unreachable.
type keyStore struct {
	jwkset.Storage

	url     string
	client  *http.Client
	timeout time.Duration
	baseCtx context.Context
	refetch *rate.Limiter
	group   singleflight.Group
	metrics *metrics
	deps    *dependency.Gauges
	log     *slog.Logger
	// changed is called when a fetched JWKS differs from the last one.
	changed func()
	// digest is the SHA-256 of the last JWKS stored.
	digest  [sha256.Size]byte
	loaded  atomic.Bool
	errMu   sync.Mutex
	lastErr error
}

// KeyRead returns the key with id kid. For an unknown kid (BetterAuth may
// have rotated) it refetches the JWKS, at most once per refetch spacing: a
// stream of made-up kids costs at most one fetch per spacing. A kid that
// arrives while the last refetch is too recent waits for the next one
// rather than being refused, so a real rotation just after a probe with a
// made-up kid is picked up within the spacing (a few seconds), not after a
// refresh interval. Requests that arrive meanwhile share that refetch.
func (s *keyStore) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	jwk, err := s.Storage.KeyRead(ctx, kid)
	if !errors.Is(err, jwkset.ErrKeyNotFound) {
		return jwk, err
	}
	select {
	case r := <-s.group.DoChan("unknown-kid", s.refetchWhenAllowed):
		err = r.Err
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return jwkset.JWK{}, fmt.Errorf("%w: %q (%w)", jwkset.ErrKeyNotFound, kid, err)
	}
	return s.Storage.KeyRead(ctx, kid)
}

// refetchWhenAllowed waits for the refetch limiter's next slot (at most the
// spacing: the singleflight group lets one caller reserve at a time, and at
// most maxRefetchWait), then refreshes.
func (s *keyStore) refetchWhenAllowed() (any, error) {
	r := s.refetch.Reserve()
	wait := r.Delay()
	if wait > maxRefetchWait {
		r.Cancel()
		return nil, errRefetchLimited
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.baseCtx.Done():
			r.Cancel()
			return nil, s.baseCtx.Err()
		}
	}
	return nil, s.refresh()
}

// refresh fetches the JWKS once; concurrent callers share one fetch. It runs
// on the store's own context so a caller that goes away does not abort a
// fetch that others wait for.
func (s *keyStore) refresh() error {
	_, err, _ := s.group.Do("fetch", func() (any, error) {
		ctx, cancel := context.WithTimeout(s.baseCtx, s.timeout)
		defer cancel()
		n, err := s.fetch(ctx)
		if err != nil {
			if s.baseCtx.Err() != nil {
				return nil, err // shutting down: not a failure of BetterAuth
			}
			s.metrics.refreshFailures.Inc()
			s.deps.Observe(dependency.JWKS, err)
			s.errMu.Lock()
			s.lastErr = err
			s.errMu.Unlock()
			s.log.Warn("JWKS refresh failed; keeping the cached keys", "url", s.url, "error", err)
			return nil, err
		}
		s.metrics.refreshOK.Inc()
		s.deps.Observe(dependency.JWKS, nil)
		s.metrics.lastSuccess.SetToCurrentTime()
		s.metrics.keys.Set(float64(n))
		if !s.loaded.Swap(true) {
			s.log.Info("JWKS loaded", "url", s.url, "keys", n)
		}
		return nil, nil
	})
	return err
}

// fetch downloads and parses the JWKS and, only if all of it is usable,
// replaces the cached keys. It returns the number of keys now cached.
func (s *keyStore) fetch(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return 0, fmt.Errorf("build JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("get JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("get JWKS: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
	if err != nil {
		return 0, fmt.Errorf("read JWKS: %w", err)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return 0, fmt.Errorf("decode JWKS: %w", err)
	}
	keys := make([]jwkset.JWK, 0, len(set.Keys))
	for _, m := range set.Keys {
		if m.KID == "" {
			continue // tokens select keys by kid; a key without one is unusable
		}
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if errors.Is(err, jwkset.ErrUnsupportedKey) {
			s.log.Warn("JWKS key of an unsupported type ignored", "kid", m.KID, "kty", m.KTY)
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("parse JWKS key %q: %w", m.KID, err)
		}
		keys = append(keys, jwk)
	}
	// An empty set would lock every user out; more likely a broken endpoint
	// than a deliberate revocation of every key, so keep what we have.
	if len(keys) == 0 {
		return 0, errors.New("JWKS has no usable keys")
	}
	if err := s.KeyReplaceAll(ctx, keys); err != nil {
		return 0, fmt.Errorf("store JWKS keys: %w", err)
	}
	// Any change (even of a key's form) counts: a token verified against
	// a key no longer published must not pass from a cache. Fetches run
	// one at a time (refresh), so digest needs no lock.
	if d := sha256.Sum256(body); d != s.digest {
		s.digest = d
		if s.changed != nil {
			s.changed()
		}
	}
	return len(keys), nil
}

// run refreshes the JWKS every interval, and more often (with backoff) until
// the first fetch succeeds, so the server turns ready soon after BetterAuth
// comes up. It returns when ctx ends.
func (s *keyStore) run(ctx context.Context, interval time.Duration) {
	backoff := 500 * time.Millisecond
	maxBackoff := min(30*time.Second, interval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		wait := interval
		if !s.loaded.Load() {
			wait = backoff
			backoff = min(2*backoff, maxBackoff)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		_ = s.refresh() // failures are counted and logged in refresh
	}
}

// ready reports nil once a fetch has succeeded.
func (s *keyStore) ready() error {
	if s.loaded.Load() {
		return nil
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.lastErr != nil {
		return fmt.Errorf("JWKS from %s not loaded yet: %w", s.url, s.lastErr)
	}
	return fmt.Errorf("JWKS from %s not loaded yet", s.url)
}
