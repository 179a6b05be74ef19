package store_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/storetest"
)

// Answers a dead replica left streaming are marked incomplete once old
// enough, content kept, at most limit per statement and oldest first; a
// young streaming answer (a live turn) and finished answers are untouched.
func TestAbandonStreamingMarksOnlyOldStreamingAnswers(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := storetest.Open(t)
	s := store.New(pool)
	err := s.SyncUser(ctx, "alice", "", "")
	g.Expect(err).NotTo(HaveOccurred())
	c, err := s.CreateConversation(ctx, "alice", "")
	g.Expect(err).NotTo(HaveOccurred())
	answer := func(content, status string, age time.Duration) string {
		m, err := s.AddMessages(ctx, "alice", c.ID, store.NewMessage{Role: store.RoleAssistant, Content: content, Status: status})
		g.Expect(err).NotTo(HaveOccurred())
		_, err = pool.Exec(ctx, `UPDATE messages SET created_at = now() - make_interval(secs => $2) WHERE id = $1::uuid`,
			m[0].ID, age.Seconds())
		g.Expect(err).NotTo(HaveOccurred())
		return m[0].ID
	}
	oldest := answer("half an answer", store.StatusStreaming, 20*time.Minute)
	old := answer("", store.StatusStreaming, 10*time.Minute)
	live := answer("still coming", store.StatusStreaming, time.Minute)
	done := answer("a whole answer", store.StatusComplete, 30*time.Minute)

	n, err := s.AbandonStreaming(ctx, 5*time.Minute, 1)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(int64(1)), "at most limit answers per statement")
	g.Expect(status(t, s, c.ID)).To(Equal(map[string][2]string{
		oldest: {store.StatusIncomplete, "half an answer"}, old: {store.StatusStreaming, ""},
		live: {store.StatusStreaming, "still coming"}, done: {store.StatusComplete, "a whole answer"},
	}), "the oldest first")

	n, err = s.AbandonStreaming(ctx, 5*time.Minute, 10)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(int64(1)))
	n, err = s.AbandonStreaming(ctx, 5*time.Minute, 10)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(BeZero(), "nothing left to sweep")
	g.Expect(status(t, s, c.ID)).To(Equal(map[string][2]string{
		oldest: {store.StatusIncomplete, "half an answer"}, old: {store.StatusIncomplete, ""},
		live: {store.StatusStreaming, "still coming"}, done: {store.StatusComplete, "a whole answer"},
	}))
}

// status maps each message of the conversation to its status and content.
func status(t *testing.T, s *store.Store, conversationID string) map[string][2]string {
	t.Helper()
	page, err := s.ListMessages(context.Background(), "alice", conversationID, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, m := range page.Items {
		out[m.ID] = [2]string{m.Status, m.Content}
	}
	return out
}

// StoppedAnswers picks, among the answers a replica streams, those their
// owner stopped, in one query; the others keep streaming.
func TestStoppedAnswersPicksOnlyTheStoppedOnes(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := store.New(storetest.Open(t))
	err := s.SyncUser(ctx, "alice", "", "")
	g.Expect(err).NotTo(HaveOccurred())
	c, err := s.CreateConversation(ctx, "alice", "")
	g.Expect(err).NotTo(HaveOccurred())
	var ids []string
	for range 3 {
		m, err := s.AddMessages(ctx, "alice", c.ID, store.NewMessage{Role: store.RoleAssistant, Status: store.StatusStreaming})
		g.Expect(err).NotTo(HaveOccurred())
		ids = append(ids, m[0].ID)
	}
	stopped, err := s.StoppedAnswers(ctx, ids)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stopped).To(BeEmpty())

	_, err = s.StopAnswer(ctx, "alice", c.ID, ids[1])
	g.Expect(err).NotTo(HaveOccurred())
	stopped, err = s.StoppedAnswers(ctx, append(ids, "00000000-0000-0000-0000-000000000000"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(stopped).To(ConsistOf(ids[1]))
}
