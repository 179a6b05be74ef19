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
// Rejected tokens are never stored: a flood of bad tokens costs their
// verification each time, and cannot evict anything (tokens only get in by
// verifying).
type tokenCache struct {
	entries *lru.Cache[[sha256.Size]byte, cachedToken]
	// generation counts the JWKS changes.
	generation atomic.Uint64
}

type cachedToken struct {
	id Identity
	// until is when the parser starts refusing the token as expired.
	until      time.Time
	generation uint64
}

func newTokenCache(size int) *tokenCache {
	entries, err := lru.New[[sha256.Size]byte, cachedToken](size)
	if err != nil {
		panic(err) // only for a size ≤ 0
	}
	return &tokenCache{entries: entries}
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

// keysChanged starts a new generation: every cached token is verified
// again on its next use.
func (c *tokenCache) keysChanged() {
	c.generation.Add(1)
	c.entries.Purge()
}
