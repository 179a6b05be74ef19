package store_test

import (
	"context"
	"testing"

	"github.com/chatbackend/chatbackend/apiserver/store"
)

// BenchmarkListConversationsPage measures one keyset page (the default 20)
// deep inside a user's 1,000 conversations, i.e. the cost of a list request
// at the database.
func BenchmarkListConversationsPage(b *testing.B) {
	ctx := context.Background()
	s := newStoreTB(b)
	if _, err := s.UpsertUser(ctx, "u", "", ""); err != nil {
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

// BenchmarkUpsertUserUnchanged measures the write-free upsert a request pays
// when the user cache misses but the claims did not change.
func BenchmarkUpsertUserUnchanged(b *testing.B) {
	ctx := context.Background()
	s := newStoreTB(b)
	if _, err := s.UpsertUser(ctx, "u", "a@example.com", "A"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if changed, err := s.UpsertUser(ctx, "u", "a@example.com", "A"); err != nil || changed {
			b.Fatalf("changed=%v err=%v", changed, err)
		}
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
		if ok, _, err := s.TakeRateToken(ctx, "u", "write", limit); err != nil || !ok {
			b.Fatalf("ok=%v err=%v", ok, err)
		}
	}
}
