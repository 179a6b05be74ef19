package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
)

// TestPostMessageSpendsItsTokenInTheTurn: posting a message spends the
// user's chat token in the transaction that stores the question (JSON and
// SSE alike): over the limit it answers 429 rate_limited with Retry-After
// and stores nothing; a conversation that is not the user's answers 404
// and still spends a token; turns of one user racing start exactly as many
// as the burst holds.
func TestPostMessageSpendsItsTokenInTheTurn(t *testing.T) {
	g := NewWithT(t)
	const burst = 2
	e := newEnv(t, withChat(t, nil), withRateLimit(1, burst), withWriteRateLimit(1000, 1000))
	const question = `{"content":"Which port does Qdrant use?"}`
	_, alice := e.user("alice-turns@example.com", "Alice")
	_, bob := e.user("bob-turns@example.com", "Bob")
	alices, bobs := e.newConversation(alice), e.newConversation(bob)
	post := func(token, conv string, sse bool) resp {
		accept := "application/json"
		if sse {
			accept = "text/event-stream"
		}
		return e.do(http.MethodPost, "/v1/conversations/"+conv+"/messages", token, str(question),
			"Accept", accept, "Content-Type", "application/json")
	}
	refused := func(r resp) {
		g.ExpectWithOffset(1, r.status).To(Equal(http.StatusTooManyRequests), string(r.body))
		g.ExpectWithOffset(1, errorCode(g, r)).To(Equal("rate_limited"))
		retry, err := strconv.Atoi(r.header.Get("Retry-After"))
		g.ExpectWithOffset(1, err).NotTo(HaveOccurred())
		g.ExpectWithOffset(1, retry).To(BeNumerically("~", 60, 2))
	}

	g.Expect(post(alice, alices, false).status).To(Equal(http.StatusOK))
	r := post(alice, alices, true)
	g.Expect(r.status).To(Equal(http.StatusOK))
	g.Expect(string(r.body)).To(ContainSubstring("event: done"))
	refused(post(alice, alices, false))
	refused(post(alice, alices, true))
	g.Expect(e.storedMessages(alices)).To(HaveLen(4), "two turns; the refused ones stored nothing")

	// bob at alice's conversation: 404, nothing stored, his token spent.
	r = post(bob, alices, false)
	g.Expect(r.status).To(Equal(http.StatusNotFound), string(r.body))
	g.Expect(errorCode(g, r)).To(Equal("not_found"))
	g.Expect(e.storedMessages(alices)).To(HaveLen(4))
	g.Expect(post(bob, bobs, true).status).To(Equal(http.StatusOK))
	refused(post(bob, bobs, false))
	g.Expect(e.storedMessages(bobs)).To(HaveLen(2))

	// Racing turns of one user, in two conversations, streamed and not.
	_, carol := e.user("carol-turns@example.com", "Carol")
	convs := []string{e.newConversation(carol), e.newConversation(carol)}
	const racers = 12
	statuses := make([]int, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost,
				e.url+"/v1/conversations/"+convs[i%2]+"/messages", strings.NewReader(question))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+carol)
			req.Header.Set("Content-Type", "application/json")
			if i%3 == 0 {
				req.Header.Set("Accept", "text/event-stream")
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			_, _ = io.Copy(io.Discard, res.Body)
			statuses[i] = res.StatusCode
		})
	}
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	g.Expect(counts).To(Equal(map[int]int{http.StatusOK: burst, http.StatusTooManyRequests: racers - burst}))
	g.Expect(len(e.storedMessages(convs[0])) + len(e.storedMessages(convs[1]))).To(Equal(2 * burst))
}
