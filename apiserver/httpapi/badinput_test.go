package httpapi_test

// Bad input is the client's error, never a 500: text PostgreSQL cannot
// store, malformed ids, deactivated or removed users, and a failed
// /agents/run that must not lose its conversation.

import (
	"context"
	"net/http"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/internal/openaitest"
)

// A NUL character ("\u0000" in JSON) in any text of any body, or a body
// that is not UTF-8, is refused with 400 before it reaches PostgreSQL
// (which refuses NUL in text: a 500 before), and nothing is stored.
func TestTextPostgreSQLCannotStoreIsABadRequest(t *testing.T) {
	g := NewWithT(t)
	e := newEnv(t, withChat(t, nil))
	_, alice := e.user("nul@example.com", "Nul")
	conv := e.newConversation(alice)
	r := e.do(http.MethodPost, "/agents/run", alice, str(`{"question":"How do I install with Helm?"}`))
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	answer := r.json()["message_id"].(string)
	before := e.storedMessages(conv)

	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v1/conversations", `{"title":"a\u0000b"}`},
		{"PATCH", "/v1/conversations/" + conv, `{"title":"\u0000"}`},
		{"POST", "/v1/conversations/" + conv + "/messages", `{"content":"hello\u0000"}`},
		{"POST", "/agents/run", `{"question":"a\u0000b"}`},
		{"POST", "/agents/run", `{"question":"hi","conversation_id":"` + conv + `\u0000"}`},
		{"POST", "/v1/messages/" + answer + "/feedback", `{"rating":"up","comment":"a\u0000b"}`},
		{"POST", "/v1/conversations", "{\"title\":\"caf\xe9\"}"}, // Latin-1, not UTF-8
		{"POST", "/v1/conversations/" + conv + "/messages", "{\"content\":\"\xff\xfe\"}"},
		{"POST", "/v1/messages/" + answer + "/feedback", "{\"rating\":\"up\",\"comment\":\"\xc3\"}"},
	} {
		r := e.do(tc.method, tc.path, alice, str(tc.body), "Content-Type", "application/json")
		g.Expect(r.status).To(Equal(http.StatusBadRequest), "%s %s %q: %s", tc.method, tc.path, tc.body, r.body)
		g.Expect(errorCode(g, r)).To(Equal("bad_request"))
	}
	g.Expect(e.storedMessages(conv)).To(Equal(before))
	list := e.do(http.MethodGet, "/v1/conversations", alice, nil)
	g.Expect(list.json()["items"]).To(HaveLen(2), "no conversation was created: %s", list.body)
	// Escaped text that is not NUL is fine, and stored as sent.
	r = e.do(http.MethodPost, "/v1/conversations", alice, str(`{"title":"tab\there \u00e9 \ud83d\ude00"}`))
	g.Expect(r.status).To(Equal(http.StatusCreated), string(r.body))
	g.Expect(r.json()["title"]).To(Equal("tab\there é 😀"))
}

// BetterAuth accepts a NUL in a user's name. The token is valid, so the
// user gets in, with the NUL left out of what is stored (a 503 on every
// request before: the users row could not be written).
func TestClaimsWithNULAreStoredWithoutIt(t *testing.T) {
	g := NewWithT(t)
	e := newEnv(t)
	id, token := e.user("nul.name@example.com", "Ada\u0000Lovelace")
	r := e.do(http.MethodGet, "/v1/me", token, nil)
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	g.Expect(r.json()).To(Equal(map[string]any{"id": id, "email": "nul.name@example.com", "name": "AdaLovelace"}))
	g.Expect(e.do(http.MethodPost, "/v1/conversations", token, nil).status).To(Equal(http.StatusCreated))
}

// Every route taking an id accepts only the canonical 36-character form;
// any other spelling of the same UUID, or garbage, is 404 like a missing
// id, never a 500, and stores nothing.
func TestMalformedIDsAreNotFoundOnEveryRoute(t *testing.T) {
	g := NewWithT(t)
	e := newEnv(t, withChat(t, nil))
	_, alice := e.user("ids@example.com", "Ids")
	r := e.do(http.MethodPost, "/agents/run", alice, str(`{"question":"How do I install with Helm?"}`))
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	conv, answer := r.json()["conversation_id"].(string), r.json()["message_id"].(string)
	before := e.storedMessages(conv)

	spellings := func(id string) []string {
		return []string{
			"urn:uuid:" + id, "{" + id + "}", strings.ReplaceAll(id, "-", ""), id + "0", id[:35],
			"%7B" + id + "%7D", "nope", "%00", "00000000-0000-4000-8000-00000000000g",
		}
	}
	for _, bad := range spellings(conv) {
		for _, tc := range []struct{ method, path, body string }{
			{"GET", "/v1/conversations/" + bad, ""},
			{"PATCH", "/v1/conversations/" + bad, `{"title":"x"}`},
			{"DELETE", "/v1/conversations/" + bad, ""},
			{"GET", "/v1/conversations/" + bad + "/messages", ""},
			{"POST", "/v1/conversations/" + bad + "/messages", `{"content":"hi"}`},
		} {
			r := e.do(tc.method, tc.path, alice, str(tc.body))
			g.Expect(r.status).To(Equal(http.StatusNotFound), "%s %s: %s", tc.method, tc.path, r.body)
			g.Expect(errorCode(g, r)).To(Equal("not_found"))
		}
		r := e.do(http.MethodPost, "/agents/run", alice, str(`{"question":"hi","conversation_id":"`+strings.ReplaceAll(bad, "%", "")+`"}`))
		g.Expect(r.status).To(Equal(http.StatusNotFound), "agents/run %s: %s", bad, r.body)
	}
	for _, bad := range spellings(answer) {
		r := e.do(http.MethodPost, "/v1/messages/"+bad+"/feedback", alice, str(`{"rating":"up"}`))
		g.Expect(r.status).To(Equal(http.StatusNotFound), "feedback %s: %s", bad, r.body)
		g.Expect(errorCode(g, r)).To(Equal("not_found"))
	}
	g.Expect(e.storedMessages(conv)).To(Equal(before))
	// The canonical form, in upper case too (UUIDs are case-insensitive).
	g.Expect(e.do(http.MethodGet, "/v1/conversations/"+strings.ToUpper(conv), alice, nil).status).To(Equal(http.StatusOK))
}

// users.is_active = false keeps a user out of every authenticated route
// at once (403), although their token stays valid; reactivating lets them
// back in. A users row removed while the server has it cached is created
// again from the token's claims, instead of every write failing on the
// foreign key (a 500 before).
func TestInactiveAndRemovedUsers(t *testing.T) {
	g := NewWithT(t)
	e := newEnv(t, withChat(t, nil))
	ctx := context.Background()
	id, token := e.user("inactive@example.com", "Inactive")
	conv := e.newConversation(token)

	setActive := func(active bool) {
		_, err := e.pool.Exec(ctx, `UPDATE users SET is_active = $2 WHERE id = $1`, id, active)
		g.Expect(err).NotTo(HaveOccurred())
	}
	// A message id nobody has: the 403 comes before any lookup.
	routes := userRoutes(t, conv, "00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000000", "hi")
	setActive(false)
	for _, tc := range routes {
		r := e.do(tc.method, tc.path, token, str(tc.body))
		g.Expect(r.status).To(Equal(http.StatusForbidden), "%s %s: %s", tc.method, tc.path, r.body)
		g.Expect(errorCode(g, r)).To(Equal("user_inactive"))
	}
	g.Expect(e.storedMessages(conv)).To(BeEmpty())
	setActive(true)
	g.Expect(e.do(http.MethodGet, "/v1/conversations/"+conv, token, nil).status).To(Equal(http.StatusOK))

	// Removed (with its conversations, ON DELETE CASCADE) behind the
	// server's back, while it has the claims cached.
	_, err := e.pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
	g.Expect(err).NotTo(HaveOccurred())
	r := e.do(http.MethodPost, "/v1/conversations", token, str(`{"title":"after removal"}`))
	g.Expect(r.status).To(Equal(http.StatusCreated), string(r.body))
	r = e.do(http.MethodGet, "/v1/me", token, nil)
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	g.Expect(r.json()["email"]).To(Equal("inactive@example.com"))
	g.Expect(e.do(http.MethodGet, "/v1/conversations/"+conv, token, nil).status).To(Equal(http.StatusNotFound))
}

// A failed /agents/run says which conversation it started and which
// answer it stored as failed, so the client can show it and retry there;
// nothing is left behind that the client cannot find.
func TestFailedAgentsRunReturnsItsConversation(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	e := newEnv(t, withChat(t, oai))
	_, token := e.user("run.fail@example.com", "Run Fail")

	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Status: http.StatusInternalServerError}
	})
	r := e.do(http.MethodPost, "/agents/run", token, str(`{"question":"How do I rotate the signing keys?"}`))
	g.Expect(r.status).To(Equal(http.StatusBadGateway), string(r.body))
	g.Expect(errorCode(g, r)).To(Equal("upstream_error"))
	body := r.json()
	conv, _ := body["conversation_id"].(string)
	g.Expect(conv).NotTo(BeEmpty(), "the started conversation is named: %s", r.body)
	g.Expect(body["message_id"]).NotTo(BeEmpty())
	g.Expect(e.listedStatus(token, conv, body["message_id"].(string))).To(Equal("failed"))

	// The retry, in the same conversation, succeeds and continues it.
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: []string{"Call the rotation endpoint [1]."}}
	})
	r = e.do(http.MethodPost, "/agents/run", token, str(`{"question":"How do I rotate the signing keys?","conversation_id":"`+conv+`"}`))
	g.Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	g.Expect(r.json()["conversation_id"]).To(Equal(conv))
	g.Expect(e.storedMessages(conv)).To(HaveLen(4))
	list := e.do(http.MethodGet, "/v1/conversations", token, nil)
	g.Expect(list.json()["items"]).To(HaveLen(1), "no second conversation: %s", list.body)

	// A conversation the caller named but cannot use is not echoed back.
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Status: http.StatusInternalServerError}
	})
	r = e.do(http.MethodPost, "/agents/run", token, str(`{"question":"hi","conversation_id":"00000000-0000-4000-8000-000000000000"}`))
	g.Expect(r.status).To(Equal(http.StatusNotFound))
	g.Expect(r.json()).NotTo(HaveKey("conversation_id"))
}
