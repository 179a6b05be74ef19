package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
		g.Expect(s.TakeRateToken(ctx, "alice", "chat", limit)).To(Succeed())
	}
	err := s.TakeRateToken(ctx, "alice", "chat", limit)
	var limited *store.RateLimitedError
	g.Expect(errors.As(err, &limited)).To(BeTrue(), "the burst is spent: %v", err)
	g.Expect(limited.Budget).To(Equal("chat"))
	g.Expect(limited.Wait).To(BeNumerically("~", time.Minute, 5*time.Second), "until the next token")

	// Other users and other budgets are untouched.
	g.Expect(s.TakeRateToken(ctx, "bob", "chat", limit)).To(Succeed())
	g.Expect(s.TakeRateToken(ctx, "alice", "write", limit)).To(Succeed())

	// A minute later (the row moved back in time), one token is back, and
	// only one.
	_, err = pool.Exec(ctx, `UPDATE rate_limits SET tat = tat - interval '1 minute' WHERE user_id = 'alice' AND budget = 'chat'`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.TakeRateToken(ctx, "alice", "chat", limit)).To(Succeed())
	g.Expect(errors.As(s.TakeRateToken(ctx, "alice", "chat", limit), &limited)).To(BeTrue())

	// Idle for long, the bucket is full again, not fuller.
	_, err = pool.Exec(ctx, `UPDATE rate_limits SET tat = tat - interval '1 day' WHERE user_id = 'alice' AND budget = 'chat'`)
	g.Expect(err).NotTo(HaveOccurred())
	allowed := 0
	for range 5 {
		if s.TakeRateToken(ctx, "alice", "chat", limit) == nil {
			allowed++
		}
	}
	g.Expect(allowed).To(Equal(3))

	err = s.TakeRateToken(ctx, "alice", "chat", store.RateLimit{PerMinute: 0, Burst: 1})
	g.Expect(err).To(HaveOccurred())
	g.Expect(errors.As(err, &limited)).To(BeFalse(), "a limit that is no limit is an error, not a refusal")
}

// TestTakeRateTokenConcurrently: requests racing on several connections (as
// from several replicas) never spend one token twice.
func TestTakeRateTokenConcurrently(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	limit := store.RateLimit{PerMinute: 0.001, Burst: 10}
	var allowed, refused atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			err := s.TakeRateToken(ctx, "u", "write", limit)
			var limited *store.RateLimitedError
			switch {
			case err == nil:
				allowed.Add(1)
			case errors.As(err, &limited):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	g.Expect(allowed.Load()).To(Equal(int32(10)))
	g.Expect(refused.Load()).To(Equal(int32(30)))
}

// TestCreateConversationLimitedSpendsATokenOrCreatesNothing: the create
// that takes its token in its own statement shares the budget with
// TakeRateToken, creates a conversation for each token it spends, and once
// the budget is spent creates nothing and says how long to wait.
func TestCreateConversationLimitedSpendsATokenOrCreatesNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := storetest.Open(t)
	s := store.New(pool)
	for _, u := range []string{"alice", "bob"} {
		err := s.SyncUser(ctx, u, u+"@example.com", u)
		g.Expect(err).NotTo(HaveOccurred())
	}
	limit := store.RateLimit{PerMinute: 1, Burst: 3}
	g.Expect(s.TakeRateToken(ctx, "alice", "write", limit)).To(Succeed())
	for i := range 2 {
		c, err := s.CreateConversationLimited(ctx, "alice", fmt.Sprint("t", i), "write", limit)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.ID).NotTo(BeEmpty())
		g.Expect(c.Title).To(Equal(fmt.Sprint("t", i)))
		g.Expect(c.CreatedAt).To(BeTemporally("~", time.Now(), time.Minute))
		got, err := s.GetConversation(ctx, "alice", c.ID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(c))
	}

	_, err := s.CreateConversationLimited(ctx, "alice", "over", "write", limit)
	var limited *store.RateLimitedError
	g.Expect(errors.As(err, &limited)).To(BeTrue(), "the burst is spent: %v", err)
	g.Expect(limited.Budget).To(Equal("write"))
	g.Expect(limited.Wait).To(BeNumerically("~", time.Minute, 5*time.Second))
	g.Expect(limited.RetryAfter()).To(BeNumerically("~", 60, 5))
	page, err := s.ListConversations(ctx, "alice", 0, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(HaveLen(2), "a refused create stores nothing")
	g.Expect(errors.As(s.TakeRateToken(ctx, "alice", "write", limit), &limited)).To(BeTrue(),
		"the refused create took no token back")

	// Another user's budget is their own; another budget is untouched.
	_, err = s.CreateConversationLimited(ctx, "bob", "", "write", limit)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = s.CreateConversationLimited(ctx, "alice", "", "other", limit)
	g.Expect(err).NotTo(HaveOccurred())

	// A token back (the row moved a minute back in time): one create more.
	_, err = pool.Exec(ctx, `UPDATE rate_limits SET tat = tat - interval '1 minute' WHERE user_id = 'alice' AND budget = 'write'`)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = s.CreateConversationLimited(ctx, "alice", "", "write", limit)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = s.CreateConversationLimited(ctx, "alice", "", "write", limit)
	g.Expect(errors.As(err, &limited)).To(BeTrue())

	// Refused input and a limit that is no limit are errors, not refusals.
	_, err = s.CreateConversationLimited(ctx, "bob", strings.Repeat("x", store.MaxTitleLen+1), "write", limit)
	g.Expect(err).To(MatchError(store.ErrInvalid))
	_, err = s.CreateConversationLimited(ctx, "bob", "", "write", store.RateLimit{PerMinute: 1})
	g.Expect(err).To(HaveOccurred())
	g.Expect(errors.As(err, &limited)).To(BeFalse())
}

// TestCreateConversationLimitedThatFailsSpendsNoToken: a create whose
// insert fails (the user's row missing: the API's 503, whose retry
// re-creates the row) spends no token, since the token and the insert are
// one statement: the retry gets the token back, and no more than that.
func TestCreateConversationLimitedThatFailsSpendsNoToken(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	limit := store.RateLimit{PerMinute: 0.001, Burst: 2}
	// One token of two spent, so the failed create meets an existing row.
	g.Expect(s.TakeRateToken(ctx, "ghost", "write", limit)).To(Succeed())

	_, err := s.CreateConversationLimited(ctx, "ghost", "", "write", limit)
	g.Expect(store.IsUserMissing(err)).To(BeTrue(), "no users row: %v", err)

	err = s.SyncUser(ctx, "ghost", "ghost@example.com", "Ghost")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = s.CreateConversationLimited(ctx, "ghost", "", "write", limit)
	g.Expect(err).NotTo(HaveOccurred(), "the failed create left the last token")
	_, err = s.CreateConversationLimited(ctx, "ghost", "", "write", limit)
	var limited *store.RateLimitedError
	g.Expect(errors.As(err, &limited)).To(BeTrue(), "two tokens, two spent: %v", err)
}

// TestCreateConversationLimitedConcurrently: creates racing on several
// connections (as from several replicas) create exactly as many
// conversations as the burst holds tokens.
func TestCreateConversationLimitedConcurrently(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	err := s.SyncUser(ctx, "u", "u@example.com", "U")
	g.Expect(err).NotTo(HaveOccurred())
	limit := store.RateLimit{PerMinute: 0.001, Burst: 10}
	var created, refused atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			_, err := s.CreateConversationLimited(ctx, "u", "", "write", limit)
			var limited *store.RateLimitedError
			switch {
			case err == nil:
				created.Add(1)
			case errors.As(err, &limited):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	g.Expect(created.Load()).To(Equal(int32(10)))
	g.Expect(refused.Load()).To(Equal(int32(30)))
	page, err := s.ListConversations(ctx, "u", store.MaxLimit, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(HaveLen(10))
}
