package specs

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
)

// ShortHash is the first 8 hex characters of the SHA-256 of s.
func ShortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

// HashData hashes Secret data independently of map order; 16 hex characters
// are plenty to notice a change and short enough to read.
func HashData(data map[string][]byte) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		// Length-prefix-free framing: NUL cannot appear in an env var name.
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(data[k])
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
