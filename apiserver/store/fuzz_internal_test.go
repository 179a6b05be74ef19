package store

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseID: the one id parser of every route accepts exactly the
// canonical 36-character UUID (in either case), returns it in lower case,
// and accepts its own output unchanged; anything else is simply not an id.
func FuzzParseID(f *testing.F) {
	const id = "6f1c2a7e-3b8d-4c4e-9a10-2f7d8e6b4c31"
	for _, seed := range []string{
		id, strings.ToUpper(id), "urn:uuid:" + id, "{" + id + "}", strings.ReplaceAll(id, "-", ""),
		id + "\x00", " " + id, id[:35] + "g", "", "nope", "00000000-0000-0000-0000-000000000000",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseID(s)
		if !ok {
			if got != "" {
				t.Fatalf("parseID(%q) refused but returned %q", s, got)
			}
			return
		}
		if len(s) != 36 || got != strings.ToLower(s) {
			t.Fatalf("parseID(%q) = %q: not the canonical form of the input", s, got)
		}
		for i, r := range got {
			dash := i == 8 || i == 13 || i == 18 || i == 23
			if dash != (r == '-') || !dash && !strings.ContainsRune("0123456789abcdef", r) {
				t.Fatalf("parseID(%q) = %q: not a canonical UUID", s, got)
			}
		}
		if again, ok := parseID(got); !ok || again != got {
			t.Fatalf("parseID(%q) = %q, %v: its own output is not stable", got, again, ok)
		}
	})
}

// FuzzCursor: a cursor from a client is either refused with ErrBadCursor
// (400) or decodes to a position with a canonical id, which encodes to a
// cursor that decodes to the same position; the cursors the server issues
// always decode.
func FuzzCursor(f *testing.F) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	f.Add(encodeCursor(at, "6f1c2a7e-3b8d-4c4e-9a10-2f7d8e6b4c31"), at.UnixNano(), "6f1c2a7e-3b8d-4c4e-9a10-2f7d8e6b4c31")
	for _, seed := range []string{"", "bm90LWEtY3Vyc29y", "!!", "e30", "eyJ0IjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJpIjoieCJ9",
		"eyJ0IjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJpIjoiNmYxYzJhN2UtM2I4ZC00YzRlLTlhMTAtMmY3ZDhlNmI0YzMxIn0="} {
		f.Add(seed, int64(0), "")
	}
	f.Fuzz(func(t *testing.T, s string, nanos int64, id string) {
		c, err := decodeCursor(s)
		switch {
		case err != nil:
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("decodeCursor(%q): %v is not ErrBadCursor", s, err)
			}
		case c == nil:
			if s != "" {
				t.Fatalf("decodeCursor(%q): no position and no error", s)
			}
		default:
			if _, ok := parseID(c.ID); !ok {
				t.Fatalf("decodeCursor(%q): id %q is not canonical", s, c.ID)
			}
			back, err := decodeCursor(encodeCursor(c.At, c.ID))
			if err != nil || !back.At.Equal(c.At) || back.ID != c.ID {
				t.Fatalf("decodeCursor(%q) = %+v does not survive a round trip: %+v, %v", s, c, back, err)
			}
		}
		// What the server issues: a row's time and canonical id.
		cid, ok := parseID(id)
		if !ok {
			return
		}
		issuedAt := time.Unix(0, nanos)
		if issuedAt.IsZero() {
			return
		}
		issued, err := decodeCursor(encodeCursor(issuedAt, cid))
		if err != nil || !issued.At.Equal(issuedAt) || issued.ID != cid {
			t.Fatalf("issued cursor (%s, %s) decodes to %+v, %v", issuedAt, cid, issued, err)
		}
	})
}
