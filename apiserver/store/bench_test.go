package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/storetest"
)

// BenchmarkListConversationsPage measures one keyset page (the default 20)
// deep inside a user's 1,000 conversations, i.e. the cost of a list request
// at the database.
func BenchmarkListConversationsPage(b *testing.B) {
	ctx := context.Background()
	s := newStoreTB(b)
	if err := s.SyncUser(ctx, "u", "", ""); err != nil {
		b.Fatal(err)
	}
	for range 1000 {
		if _, err := s.CreateConversation(ctx, "u", "t"); err != nil {
			b.Fatal(err)
		}
	}
	first, err := s.ListConversations(ctx, "u", 500, "")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		page, err := s.ListConversations(ctx, "u", 0, first.NextCursor)
		if err != nil || len(page.Items) != 20 {
			b.Fatalf("page of %d: %v", len(page.Items), err)
		}
	}
}

// BenchmarkSyncUserUnchanged measures the write-free sync a request pays
// when the user cache misses but the claims did not change; the row's
// version (xmin) before and after shows that it stayed write-free.
func BenchmarkSyncUserUnchanged(b *testing.B) {
	ctx := context.Background()
	pool := storetest.Open(b)
	s := store.New(pool)
	if err := s.SyncUser(ctx, "u", "a@example.com", "A"); err != nil {
		b.Fatal(err)
	}
	version := func() (v string) {
		if err := pool.QueryRow(ctx, `SELECT xmin::text FROM users WHERE id = 'u'`).Scan(&v); err != nil {
			b.Fatal(err)
		}
		return v
	}
	before := version()
	for b.Loop() {
		if err := s.SyncUser(ctx, "u", "a@example.com", "A"); err != nil {
			b.Fatal(err)
		}
	}
	if after := version(); after != before {
		b.Fatalf("an unchanged user was written: xmin %s, then %s", before, after)
	}
}

// BenchmarkTakeRateToken measures what the shared rate limit adds to every
// write request: one upsert of the user's budget row (a generous limit, so
// every call is let through and writes).
func BenchmarkTakeRateToken(b *testing.B) {
	ctx := context.Background()
	s := newStoreTB(b)
	limit := store.RateLimit{PerMinute: 1e6, Burst: 1_000_000}
	for b.Loop() {
		if err := s.TakeRateToken(ctx, "u", "write", limit); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateConversation is a create with its rate token as two
// statements and two commits (TakeRateToken, then the insert: what a
// question without a conversation still does) and as one
// (CreateConversationLimited, POST /v1/conversations).
func BenchmarkCreateConversation(b *testing.B) {
	ctx := context.Background()
	s := newStoreTB(b)
	if err := s.SyncUser(ctx, "u", "", ""); err != nil {
		b.Fatal(err)
	}
	limit := store.RateLimit{PerMinute: 1e6, Burst: 1_000_000}
	b.Run("token then insert", func(b *testing.B) {
		for b.Loop() {
			if err := s.TakeRateToken(ctx, "u", "write", limit); err != nil {
				b.Fatal(err)
			}
			if _, err := s.CreateConversation(ctx, "u", "bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one statement", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.CreateConversationLimited(ctx, "u", "bench", "write", limit); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkListMessagesHistory is how a page of messages (the default 20)
// grows with the conversation's history, 100 to 100,000 messages: the first
// page, and the last one through its keyset cursor (make bench-growth).
func BenchmarkListMessagesHistory(b *testing.B) {
	ctx := context.Background()
	pool := storetest.Open(b)
	s := store.New(pool)
	if err := s.SyncUser(ctx, "u", "", ""); err != nil {
		b.Fatal(err)
	}
	conv, err := s.CreateConversation(ctx, "u", "long")
	if err != nil {
		b.Fatal(err)
	}
	have := 0
	for _, n := range []int{100, 1_000, 10_000, 100_000} {
		// Grow the history to n messages, a second apart.
		if _, err := pool.Exec(ctx, `INSERT INTO messages (conversation_id, user_id, role, content, created_at)
			SELECT $1::uuid, 'u', 'user', 'message ' || i, now() - interval '1 year' + make_interval(secs => i)
			FROM generate_series($2::int + 1, $3::int) i`, conv.ID, have, n); err != nil {
			b.Fatal(err)
		}
		have = n
		if _, err := pool.Exec(ctx, `ANALYZE messages`); err != nil {
			b.Fatal(err)
		}
		// The cursor of the last page: walk there a hundred at a time.
		cursor := ""
		for range n/store.MaxLimit - 1 {
			page, err := s.ListMessages(ctx, "u", conv.ID, store.MaxLimit, cursor)
			if err != nil {
				b.Fatal(err)
			}
			cursor = page.NextCursor
		}
		for _, at := range []struct{ name, cursor string }{{"first", ""}, {"last", cursor}} {
			b.Run(fmt.Sprintf("history=%d/page=%s", n, at.name), func(b *testing.B) {
				for b.Loop() {
					page, err := s.ListMessages(ctx, "u", conv.ID, 0, at.cursor)
					if err != nil || len(page.Items) != store.DefaultLimit {
						b.Fatalf("page of %d: %v", len(page.Items), err)
					}
				}
			})
		}
	}
}
