package chat_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/chat"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

// A replica sweeps at start-up: an answer another replica left streaming
// when it died is marked incomplete at once, its content kept.
func TestSweepAtStartMarksAbandonedAnswersIncomplete(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	svc, st := newService(t)
	c, err := st.CreateConversation(ctx, "alice", "")
	g.Expect(err).NotTo(HaveOccurred())
	m, err := st.AddMessages(ctx, "alice", c.ID,
		store.NewMessage{Role: store.RoleUser, Content: "How do I install Acme?"},
		store.NewMessage{Role: store.RoleAssistant, Content: "Run the", Status: store.StatusStreaming})
	g.Expect(err).NotTo(HaveOccurred())

	sweepCtx, stop := context.WithCancel(ctx)
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		// Any age counts as abandoned; the next sweep is an hour away, so
		// only the start-up sweep can mark it.
		svc.SweepAbandoned(sweepCtx, 0, time.Hour)
	}()
	defer func() { stop(); <-swept }()
	g.Eventually(func(g Gomega) {
		page, err := st.ListMessages(ctx, "alice", c.ID, 10, "")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(page.Items).To(HaveLen(2))
		g.Expect([]string{page.Items[1].ID, page.Items[1].Status, page.Items[1].Content}).
			To(Equal([]string{m[1].ID, store.StatusIncomplete, "Run the"}))
	}).WithTimeout(10 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
}

// A live turn is never swept: it ends within the chat timeout and stores
// its answer within the save timeout, both below the sweep's age.
func TestAbandonedAfterOutlastsALiveTurn(t *testing.T) {
	g := NewWithT(t)
	g.Expect(chat.AbandonedAfter(5 * time.Minute)).To(BeNumerically(">=", 5*time.Minute+10*time.Second))
}
