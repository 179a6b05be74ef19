package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/storetest"
)

// turnMessages are what a chat turn's start stores: the question and its
// answer, streaming.
func turnMessages() []store.NewMessage {
	return []store.NewMessage{
		{Role: store.RoleUser, Content: "Which port does Qdrant use?"},
		{Role: store.RoleAssistant, Status: store.StatusStreaming},
	}
}

// TestStartTurnSpendsATokenOrStoresNothing: a turn's start charged to a
// budget spends one token in its own transaction; refused, it stores
// nothing, leaves the conversation as it was and spends nothing more; a
// conversation that is missing or another user's spends the token (as the
// route's token taken first did) but stores nothing; an id that is no id
// costs nothing.
func TestStartTurnSpendsATokenOrStoresNothing(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := storetest.Open(t)
	s := store.New(pool)
	for _, u := range []string{"alice", "bob"} {
		err := s.SyncUser(ctx, u, "", "")
		g.Expect(err).NotTo(HaveOccurred())
	}
	c, err := s.CreateConversation(ctx, "alice", "")
	g.Expect(err).NotTo(HaveOccurred())
	charge := &store.Charge{Budget: "chat", Limit: store.RateLimit{PerMinute: 1, Burst: 2}}

	_, started, err := s.StartTurn(ctx, "alice", c.ID, charge, 10, "", turnMessages()...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(started).To(HaveLen(2))
	_, _, err = s.StartTurn(ctx, "alice", "not-a-uuid", charge, 10, "", turnMessages()...)
	g.Expect(err).To(MatchError(store.ErrNotFound), "an id that is no id")
	history, _, err := s.StartTurn(ctx, "alice", c.ID, charge, 10, "", turnMessages()...)
	g.Expect(err).NotTo(HaveOccurred(), "the malformed id spent nothing: the second token is left")
	g.Expect(history).To(Equal([]store.Turn{{Role: "user", Content: "Which port does Qdrant use?"}}), "the first turn's question; its answer still streams, empty")
	before, err := s.GetConversation(ctx, "alice", c.ID)
	g.Expect(err).NotTo(HaveOccurred())

	var limited *store.RateLimitedError
	for range 2 {
		_, _, err = s.StartTurn(ctx, "alice", c.ID, charge, 10, "", turnMessages()...)
		g.Expect(errors.As(err, &limited)).To(BeTrue(), "the burst is spent: %v", err)
		g.Expect(limited.Budget).To(Equal("chat"))
		g.Expect(limited.RetryAfter()).To(BeNumerically("~", 60, 2))
	}
	page, err := s.ListMessages(ctx, "alice", c.ID, 20, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(HaveLen(4), "refused turns store nothing")
	after, err := s.GetConversation(ctx, "alice", c.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(after.UpdatedAt).To(Equal(before.UpdatedAt), "nor touch the conversation")

	// One token back (the row a minute back in time): one turn, then
	// refused again, so the refusals spent nothing.
	_, err = pool.Exec(ctx, `UPDATE rate_limits SET tat = tat - interval '1 minute' WHERE user_id = 'alice' AND budget = 'chat'`)
	g.Expect(err).NotTo(HaveOccurred())
	_, _, err = s.StartTurn(ctx, "alice", c.ID, charge, 10, "", turnMessages()...)
	g.Expect(err).NotTo(HaveOccurred())
	_, _, err = s.StartTurn(ctx, "alice", c.ID, charge, 10, "", turnMessages()...)
	g.Expect(errors.As(err, &limited)).To(BeTrue(), "%v", err)

	// bob at alice's conversation: not found, nothing stored, a token spent.
	_, _, err = s.StartTurn(ctx, "bob", c.ID, charge, 10, "", turnMessages()...)
	g.Expect(err).To(MatchError(store.ErrNotFound))
	page, err = s.ListMessages(ctx, "alice", c.ID, 20, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(HaveLen(6))
	bobs, err := s.CreateConversation(ctx, "bob", "")
	g.Expect(err).NotTo(HaveOccurred())
	_, _, err = s.StartTurn(ctx, "bob", bobs.ID, charge, 10, "", turnMessages()...)
	g.Expect(err).NotTo(HaveOccurred(), "bob's own budget: the second token")
	_, _, err = s.StartTurn(ctx, "bob", bobs.ID, charge, 10, "", turnMessages()...)
	g.Expect(errors.As(err, &limited)).To(BeTrue(), "the 404 spent the first: %v", err)

	// A limit that is no limit is an error, not a refusal, and stores nothing.
	_, _, err = s.StartTurn(ctx, "bob", bobs.ID, &store.Charge{Budget: "chat"}, 10, "", turnMessages()...)
	g.Expect(err).To(HaveOccurred())
	g.Expect(errors.As(err, &limited)).To(BeFalse())
}

// TestStartTurnChargedConcurrently: turns of one user racing on several
// connections (as from several replicas) start exactly as many as the
// burst holds tokens, each with its question before its answer.
func TestStartTurnChargedConcurrently(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	err := s.SyncUser(ctx, "u", "", "")
	g.Expect(err).NotTo(HaveOccurred())
	var convs []string
	for range 2 {
		c, err := s.CreateConversation(ctx, "u", "")
		g.Expect(err).NotTo(HaveOccurred())
		convs = append(convs, c.ID)
	}
	const burst, racers = 10, 40
	charge := &store.Charge{Budget: "chat", Limit: store.RateLimit{PerMinute: 0.001, Burst: burst}}
	var started, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			_, _, err := s.StartTurn(ctx, "u", convs[i%len(convs)], charge, 10, "", turnMessages()...)
			var limited *store.RateLimitedError
			switch {
			case err == nil:
				started.Add(1)
			case errors.As(err, &limited):
				refused.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	g.Expect(started.Load()).To(Equal(int32(burst)))
	g.Expect(refused.Load()).To(Equal(int32(racers - burst)))
	stored := 0
	for _, c := range convs {
		page, err := s.ListMessages(ctx, "u", c, store.MaxLimit, "")
		g.Expect(err).NotTo(HaveOccurred())
		for i, m := range page.Items {
			g.Expect(m.Role).To(Equal([]string{store.RoleUser, store.RoleAssistant}[i%2]), "question, answer, question, ...")
		}
		stored += len(page.Items)
	}
	g.Expect(stored).To(Equal(2 * burst))
}
