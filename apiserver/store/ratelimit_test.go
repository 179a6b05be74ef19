package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/storetest"
)

func TestTakeRateTokenIsATokenBucketPerUserAndBudget(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := storetest.Open(t)
	s := store.New(pool)
	// A token a minute, at most 3 at once: nothing refills during the test
	// unless the test says so.
	limit := store.RateLimit{PerMinute: 1, Burst: 3}
	for range 3 {
		ok, _, err := s.TakeRateToken(ctx, "alice", "chat", limit)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ok).To(BeTrue())
	}
	ok, wait, err := s.TakeRateToken(ctx, "alice", "chat", limit)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ok).To(BeFalse(), "the burst is spent")
	g.Expect(wait).To(BeNumerically("~", time.Minute, 5*time.Second), "until the next token")

	// Other users and other budgets are untouched.
	ok, _, _ = s.TakeRateToken(ctx, "bob", "chat", limit)
	g.Expect(ok).To(BeTrue())
	ok, _, _ = s.TakeRateToken(ctx, "alice", "write", limit)
	g.Expect(ok).To(BeTrue())

	// A minute later (the row moved back in time), one token is back, and
	// only one.
	_, err = pool.Exec(ctx, `UPDATE rate_limits SET tat = tat - interval '1 minute' WHERE user_id = 'alice' AND budget = 'chat'`)
	g.Expect(err).NotTo(HaveOccurred())
	ok, _, _ = s.TakeRateToken(ctx, "alice", "chat", limit)
	g.Expect(ok).To(BeTrue())
	ok, _, _ = s.TakeRateToken(ctx, "alice", "chat", limit)
	g.Expect(ok).To(BeFalse())

	// Idle for long, the bucket is full again, not fuller.
	_, err = pool.Exec(ctx, `UPDATE rate_limits SET tat = tat - interval '1 day' WHERE user_id = 'alice' AND budget = 'chat'`)
	g.Expect(err).NotTo(HaveOccurred())
	allowed := 0
	for range 5 {
		if ok, _, _ := s.TakeRateToken(ctx, "alice", "chat", limit); ok {
			allowed++
		}
	}
	g.Expect(allowed).To(Equal(3))

	_, _, err = s.TakeRateToken(ctx, "alice", "chat", store.RateLimit{PerMinute: 0, Burst: 1})
	g.Expect(err).To(HaveOccurred())
}

// TestTakeRateTokenConcurrently: requests racing on several connections (as
// from several replicas) never spend one token twice.
func TestTakeRateTokenConcurrently(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
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
