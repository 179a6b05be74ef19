package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/store"
)

func TestTakeRateTokenIsATokenBucketPerUserAndBudget(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	for _, u := range []string{"alice", "bob"} {
		_, err := s.UpsertUser(ctx, u, "", "")
		g.Expect(err).NotTo(HaveOccurred())
	}
	// A token every 0.2 s, at most 3 at once.
	limit := store.RateLimit{PerMinute: 300, Burst: 3}
	for range 3 {
		ok, _, err := s.TakeRateToken(ctx, "alice", "chat", limit)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ok).To(BeTrue())
	}
	ok, wait, err := s.TakeRateToken(ctx, "alice", "chat", limit)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeFalse(), "the burst is spent")
	g.Expect(wait).To(BeNumerically(">", 0))
	g.Expect(wait).To(BeNumerically("<=", 200*time.Millisecond))

	// Other users and other budgets are untouched.
	ok, _, _ = s.TakeRateToken(ctx, "bob", "chat", limit)
	g.Expect(ok).To(BeTrue())
	ok, _, _ = s.TakeRateToken(ctx, "alice", "write", limit)
	g.Expect(ok).To(BeTrue())

	// After the wait it said, one token is back, and only one.
	time.Sleep(wait)
	ok, _, _ = s.TakeRateToken(ctx, "alice", "chat", limit)
	g.Expect(ok).To(BeTrue())
	ok, _, _ = s.TakeRateToken(ctx, "alice", "chat", limit)
	g.Expect(ok).To(BeFalse())

	_, _, err = s.TakeRateToken(ctx, "alice", "chat", store.RateLimit{PerMinute: 0, Burst: 1})
	g.Expect(err).To(HaveOccurred())
}

// TestTakeRateTokenConcurrently: requests racing on several connections (as
// from several replicas) never spend one token twice.
func TestTakeRateTokenConcurrently(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	_, err := s.UpsertUser(ctx, "u", "", "")
	g.Expect(err).NotTo(HaveOccurred())
	limit := store.RateLimit{PerMinute: 0.001, Burst: 10}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			ok, _, err := s.TakeRateToken(ctx, "u", "write", limit)
			if err != nil {
				t.Error(err)
			}
			if ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	g.Expect(allowed.Load()).To(Equal(int32(10)))
}
