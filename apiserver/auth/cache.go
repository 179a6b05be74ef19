package auth

import (
	"crypto/sha256"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// tokenCacheSize bounds the verified tokens remembered: a user's token is
// sent with each of their requests for its whole life, so a few thousand
// active users' tokens fit. About 300 bytes each, so at most a few MB.
const tokenCacheSize = 10_000

// tokenCache remembers the identities of tokens verified lately, so a
// client's next requests with the same token skip the signature check and
// the claims' decoding: on an authenticated read that was the largest part
// of the server's own CPU time (make bench-http's profiles).
//
// It changes no verdict. Only tokens that passed every check are stored,
// and every check a token passed stays passed as time goes on (the
// algorithm, kid, signature, iss, aud and lifetime are fixed by the token
// and the configuration; nbf and iat only become easier) except two, which
// a hit checks again:
//   - exp: an entry serves only until the instant the parser would refuse
//     the token (exp plus the leeway); after it the token is verified
//     afresh, and refused as expired;
//   - the key: every entry is tagged with the generation of the JWKS it was
//     verified against; any change of the JWKS (a key removed, added or
//     replaced) starts a new generation, and entries of an older one are
//     misses, so a removed key's tokens are refused from its refresh on.
//
// Tokens are keyed by their SHA-256: the cache holds no usable token.
//
// Rejected tokens are kept apart (rejected), so that bad tokens can never
// evict good ones, and only for verdicts that the same token gets again as
// long as the JWKS does not change (see cacheableRejection): the same
// forged or foreign token sent again costs a hash and a lookup instead of
// a signature check. They are bounded in number and kept at most
// rejectionTTL; a JWKS change drops them too.
type tokenCache struct {
	entries  *lru.Cache[[sha256.Size]byte, cachedToken]
	rejected *lru.Cache[[sha256.Size]byte, cachedRejection]
	// generation counts the JWKS changes.
	generation atomic.Uint64
}

// rejectionCacheSize bounds the rejected tokens remembered (about 100 bytes
// each); a flood of distinct bad tokens churns through them, each costing
// its verification, as without the cache.
const rejectionCacheSize = 10_000

// rejectionTTL bounds how long a verdict is kept: they do not change while
// the JWKS does not, so this only bounds the memory of a quiet attacker.
const rejectionTTL = 10 * time.Minute

type cachedRejection struct {
	err        *Error
	until      time.Time
	generation uint64
}

type cachedToken struct {
	id Identity
	// until is when the parser starts refusing the token as expired.
	until      time.Time
	generation uint64
}

func newTokenCache(size, rejectedSize int) *tokenCache {
	entries, err := lru.New[[sha256.Size]byte, cachedToken](size)
	if err != nil {
		panic(err) // only for a size ≤ 0
	}
	rejected, err := lru.New[[sha256.Size]byte, cachedRejection](rejectedSize)
	if err != nil {
		panic(err)
	}
	return &tokenCache{entries: entries, rejected: rejected}
}

// get returns the identity of a token verified in the current JWKS
// generation that has not expired at now.
func (c *tokenCache) get(key [sha256.Size]byte, now time.Time) (Identity, bool) {
	e, ok := c.entries.Get(key)
	if !ok {
		return Identity{}, false
	}
	if e.generation != c.generation.Load() || !now.Before(e.until) {
		c.entries.Remove(key)
		return Identity{}, false
	}
	return e.id, true
}

// put stores a token verified against JWKS generation gen (read before the
// verification began, so that a key change during it is not missed).
func (c *tokenCache) put(key [sha256.Size]byte, id Identity, until time.Time, gen uint64) {
	if gen != c.generation.Load() {
		return
	}
	c.entries.Add(key, cachedToken{id: id, until: until, generation: gen})
}

// getRejected returns the verdict of a token rejected in the current JWKS
// generation, within rejectionTTL.
func (c *tokenCache) getRejected(key [sha256.Size]byte, now time.Time) (*Error, bool) {
	e, ok := c.rejected.Get(key)
	if !ok {
		return nil, false
	}
	if e.generation != c.generation.Load() || !now.Before(e.until) {
		c.rejected.Remove(key)
		return nil, false
	}
	return e.err, true
}

// putRejected stores a verdict reached against JWKS generation gen, if
// cacheableRejection allows it.
func (c *tokenCache) putRejected(key [sha256.Size]byte, err *Error, now time.Time, gen uint64) {
	if gen != c.generation.Load() || !cacheableRejection(err) {
		return
	}
	c.rejected.Add(key, cachedRejection{err: err, until: now.Add(rejectionTTL), generation: gen})
}

// cacheableRejection: the verdicts a token gets again for as long as the
// JWKS and the configuration stay the same, whatever the time. Not
// unknown_key (a rotation's new key may be published, and fetched, a moment
// later) and not expired (which also covers "not valid yet").
func cacheableRejection(err *Error) bool {
	switch err.Result {
	case ResultMalformed, ResultBadSignature, ResultBadIssuer, ResultBadAudience, ResultBadAlgorithm, ResultBadLifetime:
		return true
	}
	return false
}

// keysChanged starts a new generation: every cached token is verified
// again on its next use.
func (c *tokenCache) keysChanged() {
	c.generation.Add(1)
	c.entries.Purge()
	c.rejected.Purge()
}
