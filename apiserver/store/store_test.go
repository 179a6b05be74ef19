package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
	"github.com/chatbackend/chatbackend/apiserver/store/storetest"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newStore returns a store on a fresh, migrated database.
func newStore(t *testing.T) *store.Store { return newStoreTB(t) }

func newStoreTB(t testing.TB) *store.Store {
	t.Helper()
	return store.New(storetest.Open(t))
}

// SyncUser creates the row, updates it when the claims change and leaves
// it alone (xmin unchanged) when they do not, and says in every case
// whether the row is active.
func TestSyncUser(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := storetest.Open(t)
	s := store.New(pool)
	version := func() (v string) {
		g.Expect(pool.QueryRow(ctx, `SELECT xmin::text FROM users WHERE id = 'u1'`).Scan(&v)).To(Succeed())
		return v
	}

	g.Expect(s.SyncUser(ctx, "u1", "a@example.com", "A")).To(Succeed(), "first sight inserts")
	inserted := version()
	g.Expect(s.SyncUser(ctx, "u1", "a@example.com", "A")).To(Succeed())
	g.Expect(version()).To(Equal(inserted), "same claims write nothing")
	g.Expect(s.SyncUser(ctx, "u1", "a@example.com", "Alice")).To(Succeed())
	g.Expect(version()).NotTo(Equal(inserted))
	u, err := s.GetUser(ctx, "u1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u.Name).To(Equal("Alice"))
	g.Expect(u.Email).To(Equal("a@example.com"))
	g.Expect(u.UpdatedAt).To(BeTemporally(">=", u.CreatedAt))
	_, err = s.GetUser(ctx, "nobody")
	g.Expect(err).To(MatchError(store.ErrNotFound))

	_, err = pool.Exec(ctx, `UPDATE users SET is_active = false WHERE id = 'u1'`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.SyncUser(ctx, "u1", "a@example.com", "Alice")).To(MatchError(store.ErrUserInactive), "unchanged")
	g.Expect(s.SyncUser(ctx, "u1", "alice@example.com", "Alice")).To(MatchError(store.ErrUserInactive), "updated")
	g.Expect(s.SyncUser(ctx, "", "", "")).NotTo(Succeed())
}

// Two first requests of one user, racing: the second's upsert waits for
// the first's insert and, the claims being equal, neither writes nor
// (in its snapshot) sees the row. Both must get the row's answer: in, for
// an active user; ErrUserInactive for a deactivated one (here users are
// created deactivated, as if an administrator's rule said so). A trigger
// holds the first request's statement after its insert, until the second
// waits on it, so the race happens every run.
func TestSyncUserRacingFirstRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		ddl  string
		want error
	}{
		{"active", "", nil},
		{"inactive", "ALTER TABLE users ALTER COLUMN is_active SET DEFAULT false", store.ErrUserInactive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			pool := storetest.Open(t)
			s := store.New(pool)
			gate, err := pool.Acquire(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			defer gate.Release()
			_, err = gate.Exec(ctx, `
CREATE FUNCTION wait_for_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_xact_lock_shared(7); RETURN NULL; END $$;
CREATE TRIGGER wait_for_gate AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION wait_for_gate();
SELECT pg_advisory_lock(7);`+tc.ddl)
			g.Expect(err).NotTo(HaveOccurred())
			waiting := func(event string) func() int {
				return func() (n int) {
					g.Expect(gate.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event = $1`, event).Scan(&n)).To(Succeed())
					return n
				}
			}

			results := make(chan error, 2)
			request := func() { results <- s.SyncUser(ctx, "u", "u@example.com", "U") }
			go request()
			g.Eventually(waiting("advisory")).WithTimeout(10*time.Second).WithPolling(10*time.Millisecond).
				Should(Equal(1), "the first request inserted the row and waits at the gate")
			go request()
			g.Eventually(waiting("transactionid")).WithTimeout(10*time.Second).WithPolling(10*time.Millisecond).
				Should(Equal(1), "the second request's upsert waits for the first's insert")
			_, err = gate.Exec(ctx, `SELECT pg_advisory_unlock(7)`)
			g.Expect(err).NotTo(HaveOccurred())
			for range 2 {
				var got error
				g.Eventually(results).WithTimeout(10 * time.Second).Should(Receive(&got))
				if tc.want == nil {
					g.Expect(got).NotTo(HaveOccurred())
				} else {
					g.Expect(got).To(MatchError(tc.want))
				}
			}
		})
	}
}

// Open spreads the ends of the connections' lifetimes, which start-up
// opens together, unless the URL sets the spread.
func TestOpenJittersConnectionLifetimes(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dbURL := pgtest.New(t)
	pool, err := store.Open(ctx, dbURL, store.Options{ConnectTimeout: 10 * time.Second, MaxConns: 1})
	g.Expect(err).NotTo(HaveOccurred())
	defer pool.Close()
	g.Expect(pool.Config().MaxConnLifetimeJitter).To(Equal(pool.Config().MaxConnLifetime / 5))
	g.Expect(pool.Config().MaxConnLifetimeJitter).To(BeNumerically(">", 0))

	u, err := url.Parse(dbURL)
	g.Expect(err).NotTo(HaveOccurred())
	q := u.Query()
	q.Set("pool_max_conn_lifetime_jitter", "1s")
	u.RawQuery = q.Encode()
	pool, err = store.Open(ctx, u.String(), store.Options{ConnectTimeout: 10 * time.Second, MaxConns: 1})
	g.Expect(err).NotTo(HaveOccurred())
	defer pool.Close()
	g.Expect(pool.Config().MaxConnLifetimeJitter).To(Equal(time.Second), "the URL's setting wins")
}

func TestConversationsAreScopedToTheirOwner(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	_ = s.SyncUser(ctx, "alice", "", "")
	_ = s.SyncUser(ctx, "bob", "", "")

	c, err := s.CreateConversation(ctx, "alice", "hello")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.ID).To(HaveLen(36))
	_, err = s.AddMessages(ctx, "alice", c.ID, store.NewMessage{Role: store.RoleUser, Content: "hi"})
	g.Expect(err).NotTo(HaveOccurred())

	got, err := s.GetConversation(ctx, "alice", c.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Title).To(Equal("hello"))

	// Bob sees nothing of Alice's, whatever he tries.
	_, err = s.GetConversation(ctx, "bob", c.ID)
	g.Expect(err).To(MatchError(store.ErrNotFound))
	_, err = s.RenameConversation(ctx, "bob", c.ID, "mine")
	g.Expect(err).To(MatchError(store.ErrNotFound))
	g.Expect(s.DeleteConversation(ctx, "bob", c.ID)).To(MatchError(store.ErrNotFound))
	_, err = s.ListMessages(ctx, "bob", c.ID, 0, "")
	g.Expect(err).To(MatchError(store.ErrNotFound))
	_, err = s.AddMessages(ctx, "bob", c.ID, store.NewMessage{Role: store.RoleUser, Content: "x"})
	g.Expect(err).To(MatchError(store.ErrNotFound))
	page, err := s.ListConversations(ctx, "bob", 0, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(BeEmpty())

	// Alice's conversation is untouched by Bob's attempts.
	got, err = s.GetConversation(ctx, "alice", c.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Title).To(Equal("hello"))
	msgs, err := s.ListMessages(ctx, "alice", c.ID, 0, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(msgs.Items).To(HaveLen(1))

	// Malformed ids are plain "not found".
	for _, id := range []string{"", "nope", "1", strings.Repeat("a", 36), "{" + c.ID + "}"} {
		_, err = s.GetConversation(ctx, "alice", id)
		g.Expect(err).To(MatchError(store.ErrNotFound), "id %q", id)
	}
}

func TestRenameAndSoftDelete(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	_ = s.SyncUser(ctx, "alice", "", "")
	c, err := s.CreateConversation(ctx, "alice", "")
	g.Expect(err).NotTo(HaveOccurred())

	r, err := s.RenameConversation(ctx, "alice", c.ID, "renamed")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Title).To(Equal("renamed"))
	g.Expect(r.UpdatedAt).To(BeTemporally(">", c.UpdatedAt))

	_, err = s.RenameConversation(ctx, "alice", c.ID, strings.Repeat("é", 256))
	g.Expect(err).To(MatchError(store.ErrInvalid))
	_, err = s.RenameConversation(ctx, "alice", c.ID, strings.Repeat("é", 255))
	g.Expect(err).NotTo(HaveOccurred(), "255 characters (510 bytes) fit")

	g.Expect(s.DeleteConversation(ctx, "alice", c.ID)).To(Succeed())
	_, err = s.GetConversation(ctx, "alice", c.ID)
	g.Expect(err).To(MatchError(store.ErrNotFound))
	g.Expect(s.DeleteConversation(ctx, "alice", c.ID)).To(MatchError(store.ErrNotFound))
	_, err = s.ListMessages(ctx, "alice", c.ID, 0, "")
	g.Expect(err).To(MatchError(store.ErrNotFound))
	page, err := s.ListConversations(ctx, "alice", 0, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(BeEmpty())
}

func TestListConversationsPagesThroughEveryConversationOnce(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	_ = s.SyncUser(ctx, "alice", "", "")
	_ = s.SyncUser(ctx, "bob", "", "")
	want := map[string]bool{}
	for range 250 {
		c, err := s.CreateConversation(ctx, "alice", "")
		g.Expect(err).NotTo(HaveOccurred())
		want[c.ID] = true
	}
	_, err := s.CreateConversation(ctx, "bob", "not alice's")
	g.Expect(err).NotTo(HaveOccurred())

	// Requested limit → page size: default 20, at most 100.
	wantPage := map[int]int{0: 20, 7: 7, 100: 100, 1000: 100}
	for limit := range wantPage {
		seen := map[string]int{}
		cursor, pages := "", 0
		var prev *store.Conversation
		for {
			page, err := s.ListConversations(ctx, "alice", limit, cursor)
			g.Expect(err).NotTo(HaveOccurred())
			pages++
			if page.NextCursor != "" {
				g.Expect(page.Items).To(HaveLen(wantPage[limit]), "limit %d", limit)
			}
			for _, c := range page.Items {
				seen[c.ID]++
				if prev != nil {
					// Most recently updated first.
					g.Expect(c.UpdatedAt).To(BeTemporally("<=", prev.UpdatedAt))
				}
				prev = &c
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
			g.Expect(pages).To(BeNumerically("<", 300), "pagination does not end")
		}
		g.Expect(seen).To(HaveLen(len(want)), "limit %d", limit)
		for id, n := range seen {
			g.Expect(want).To(HaveKey(id))
			g.Expect(n).To(Equal(1), "conversation %s seen %d times with limit %d", id, n, limit)
		}
	}

	_, err = s.ListConversations(ctx, "alice", 10, "garbage!")
	g.Expect(err).To(MatchError(store.ErrBadCursor))
}

// Renaming moves a conversation to the head of the list.
func TestListConversationsOrdersByLastUpdate(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	_ = s.SyncUser(ctx, "alice", "", "")
	a, _ := s.CreateConversation(ctx, "alice", "a")
	b, _ := s.CreateConversation(ctx, "alice", "b")
	page, err := s.ListConversations(ctx, "alice", 0, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids(page.Items)).To(Equal([]string{b.ID, a.ID}))
	_, err = s.AddMessages(ctx, "alice", a.ID, store.NewMessage{Role: store.RoleUser, Content: "bump"})
	g.Expect(err).NotTo(HaveOccurred())
	page, err = s.ListConversations(ctx, "alice", 0, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids(page.Items)).To(Equal([]string{a.ID, b.ID}))
}

func ids(cs []store.Conversation) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestMessagesOldestFirstWithSources(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	_ = s.SyncUser(ctx, "alice", "", "")
	c, _ := s.CreateConversation(ctx, "alice", "")

	var want []string
	for i := range 25 {
		// Pairs written in one transaction must keep their order.
		added, err := s.AddMessages(ctx, "alice", c.ID,
			store.NewMessage{Role: store.RoleUser, Content: "q" + string(rune('a'+i))},
			store.NewMessage{Role: store.RoleAssistant, Content: "a" + string(rune('a'+i)),
				Sources: json.RawMessage(`[{"url":"https://docs.example.com/x","title":"X"}]`), AgentType: "docs"})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(added).To(HaveLen(2))
		want = append(want, added[0].ID, added[1].ID)
	}
	var got []string
	cursor := ""
	for {
		page, err := s.ListMessages(ctx, "alice", c.ID, 15, cursor)
		g.Expect(err).NotTo(HaveOccurred())
		for _, m := range page.Items {
			got = append(got, m.ID)
			if m.Role == store.RoleAssistant {
				g.Expect(m.Sources).To(MatchJSON(`[{"url":"https://docs.example.com/x","title":"X"}]`))
				g.Expect(m.AgentType).To(Equal("docs"))
			} else {
				g.Expect(m.Sources).To(MatchJSON(`[]`))
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	g.Expect(got).To(Equal(want))

	_, err := s.AddMessages(ctx, "alice", c.ID,
		store.NewMessage{Role: store.RoleUser, Content: "kept?"},
		store.NewMessage{Role: "robot", Content: "bad role"})
	g.Expect(err).To(HaveOccurred())
	page, err := s.ListMessages(ctx, "alice", c.ID, 100, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(HaveLen(50), "a rejected batch writes nothing")
}

func TestOpenGivesUpWithinTimeout(t *testing.T) {
	g := NewWithT(t)
	start := time.Now()
	// Nothing listens on port 1.
	_, err := store.Open(context.Background(), "postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=1",
		store.Options{ConnectTimeout: 800 * time.Millisecond})
	g.Expect(err).To(MatchError(ContainSubstring("gave up after")))
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	g.Expect(store.IsUnavailable(err)).To(BeTrue(), "a refused connection is an unavailable database")
	g.Expect(store.IsUnavailable(store.ErrNotFound)).To(BeFalse())
	g.Expect(store.IsUnavailable(fmt.Errorf("list: %w", &pgconn.PgError{Code: "42601"}))).To(BeFalse(), "a query error is not an outage")
	g.Expect(store.IsUnavailable(fmt.Errorf("list: %w", &pgconn.PgError{Code: "57P03"}))).To(BeTrue(), "the database is starting up")

	_, err = store.Open(context.Background(), "postgres://u:secret@%zz/db", store.Options{})
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).NotTo(ContainSubstring("secret"))
}

// One Message type carries what the chat records about an answer: it is
// stored and listed back with its status, model and token usage.
func TestMessagesKeepStatusModelAndUsage(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s := newStore(t)
	err := s.SyncUser(ctx, "alice", "", "")
	g.Expect(err).NotTo(HaveOccurred())
	c, err := s.CreateConversation(ctx, "alice", "")
	g.Expect(err).NotTo(HaveOccurred())
	answerID := "6f1c1c3e-8a7b-4c1d-9e2f-0a1b2c3d4e5f"
	added, err := s.AddMessages(ctx, "alice", c.ID,
		store.NewMessage{Role: store.RoleUser, Content: "q"},
		store.NewMessage{ID: answerID, Role: store.RoleAssistant, Content: "partial", Status: store.StatusFailed,
			Model: "m1", PromptTokens: 12, CompletionTokens: 3})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(added[0].Status).To(Equal(store.StatusComplete), "the default status")
	g.Expect(added[1].ID).To(Equal(answerID), "the id chosen before generation")

	page, err := s.ListMessages(ctx, "alice", c.ID, 10, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(HaveLen(2))
	a := page.Items[1]
	g.Expect([]any{a.ID, a.Status, a.Model, a.PromptTokens, a.CompletionTokens}).To(Equal([]any{answerID, "failed", "m1", int64(12), int64(3)}))

	// A turn's start reads the history before it stores its messages, in
	// the same round trip.
	history, started, err := s.StartTurn(ctx, "alice", c.ID, nil, 10, "",
		store.NewMessage{Role: store.RoleUser, Content: "q2"},
		store.NewMessage{Role: store.RoleAssistant, Status: store.StatusStreaming})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(history).To(Equal([]store.Turn{{Role: "user", Content: "q"}}), "failed answers are left out of the history")
	g.Expect(started).To(HaveLen(2))
	g.Expect(started[0].CreatedAt).To(BeTemporally("<", started[1].CreatedAt), "stored in order")
	history, _, err = s.StartTurn(ctx, "alice", c.ID, nil, 10, added[0].ID, store.NewMessage{Role: store.RoleAssistant, Content: "again"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(history).To(BeEmpty(), "only what came before the given message")
	history, _, err = s.StartTurn(ctx, "alice", c.ID, nil, 1, "", store.NewMessage{Role: store.RoleUser, Content: "q3"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(history).To(Equal([]store.Turn{{Role: "assistant", Content: "again"}}), "the last n, not what this call stores")

	// Another user's conversation: nothing read, nothing stored.
	err = s.SyncUser(ctx, "bob", "", "")
	g.Expect(err).NotTo(HaveOccurred())
	_, _, err = s.StartTurn(ctx, "bob", c.ID, nil, 10, "", store.NewMessage{Role: store.RoleUser, Content: "intruder"})
	g.Expect(err).To(MatchError(store.ErrNotFound))
	page, err = s.ListMessages(ctx, "alice", c.ID, 20, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(HaveLen(6))

	_, err = s.AddMessages(ctx, "alice", c.ID, store.NewMessage{Role: store.RoleAssistant, Status: "meh"})
	g.Expect(err).To(MatchError(ContainSubstring("invalid status")))
}

// A turn's start is one batch of statements: the query timeout bounds it
// as it bounds a single statement. A conversation locked by a transaction
// that never ends (a stuck writer) makes the start answer unavailable
// once the timeout passes, rather than wait for the lock.
func TestStartTurnIsBoundedByTheQueryTimeout(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	url := pgtest.New(t)
	_, err := migrations.Migrate(ctx, url, nil, nil)
	g.Expect(err).NotTo(HaveOccurred())
	pool, err := store.Open(ctx, url, store.Options{ConnectTimeout: 10 * time.Second, QueryTimeout: 200 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(pool.Close)
	s := store.New(pool)
	err = s.SyncUser(ctx, "alice", "", "")
	g.Expect(err).NotTo(HaveOccurred())
	c, err := s.CreateConversation(ctx, "alice", "")
	g.Expect(err).NotTo(HaveOccurred())

	locker, err := pgx.Connect(ctx, url)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = locker.Close(ctx) })
	tx, err := locker.Begin(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	_, err = tx.Exec(ctx, `SELECT 1 FROM conversations WHERE id = $1::uuid FOR UPDATE`, c.ID)
	g.Expect(err).NotTo(HaveOccurred())

	done := make(chan error, 1)
	go func() {
		_, _, err := s.StartTurn(ctx, "alice", c.ID, nil, 10, "", store.NewMessage{Role: store.RoleUser, Content: "q"})
		done <- err
	}()
	var startErr error
	g.Eventually(done).WithTimeout(20*time.Second).Should(Receive(&startErr), "the start gives up once the query timeout passes, lock or not")
	g.Expect(store.IsUnavailable(startErr)).To(BeTrue(), "%v", startErr)
	g.Expect(tx.Rollback(ctx)).To(Succeed())
	page, err := s.ListMessages(ctx, "alice", c.ID, 10, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.Items).To(BeEmpty(), "nothing stored")
}
