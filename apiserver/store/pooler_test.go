package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
	"github.com/chatbackend/chatbackend/internal/pgtest"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

// DATABASE_URL may be a transaction-mode pooler that cannot route
// protocol-level prepared statements (PgBouncer before 1.21, or with
// max_prepared_statements 0), which hands each statement outside a
// transaction to whichever backend is free: a named prepared statement
// created on one backend does not exist on the next. With
// default_query_exec_mode=exec in the URL, after a representative set of
// queries the (single) connection must hold no prepared statement, and the
// queries must keep working when the backend's session state is wiped
// between them, as happens when the pooler switches backends. Without it,
// the same queries are prepared (pgx's default, half PostgreSQL's CPU per
// write).
func TestQueriesLeaveNoSessionStateForATransactionPooler(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dbURL := pgtest.New(t)
	_, err := migrations.Migrate(ctx, dbURL, nil, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(preparedAfterWorkload(t, dbURL, false)).To(BeNumerically(">", 0), "by default each statement is prepared once per connection")
	g.Expect(preparedAfterWorkload(t, withParam(t, dbURL, "default_query_exec_mode", "exec"), true)).To(BeZero(),
		"named prepared statements left on the backend; a transaction pooler cannot route them")
}

// withParam is dbURL with the query parameter k=v added.
func withParam(t *testing.T, dbURL, k, v string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// preparedAfterWorkload runs every kind of query twice on one connection
// (a statement cache prepares on the first run) and returns how many
// prepared statements that backend then holds; with wipeToo it then runs
// them again with the session wiped between queries.
func preparedAfterWorkload(t *testing.T, dbURL string, wipeToo bool) int {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	// One connection: every query below and the check run on the same backend.
	pool, err := store.Open(ctx, dbURL, store.Options{ConnectTimeout: 10 * time.Second, MaxConns: 1})
	g.Expect(err).NotTo(HaveOccurred())
	defer pool.Close()
	s := store.New(pool)

	var pid int
	g.Expect(pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid)).To(Succeed())

	// wipe, when set, runs between queries: DISCARD ALL drops what a fresh
	// backend would not have (prepared statements, temp tables, settings).
	var wipe bool
	step := func(name string, err error) {
		t.Helper()
		g.Expect(err).NotTo(HaveOccurred(), "%s (session wiped between queries: %v)", name, wipe)
		if wipe {
			_, err := pool.Exec(ctx, "DISCARD ALL")
			g.Expect(err).NotTo(HaveOccurred())
		}
	}
	calls := 0
	workload := func(user string) {
		err := s.SyncUser(ctx, user, user+"@example.com", "A")
		step("sync user", err)
		err = s.SyncUser(ctx, user, user+"@example.com", "A") // unchanged: the read-only path
		step("sync unchanged user", err)
		_, err = s.GetUser(ctx, user)
		step("get user", err)
		c, err := s.CreateConversation(ctx, user, "hello")
		step("create conversation", err)
		_, err = s.GetConversation(ctx, user, c.ID)
		step("get conversation", err)
		_, err = s.RenameConversation(ctx, user, c.ID, "renamed")
		step("rename conversation", err)
		page, err := s.ListConversations(ctx, user, 1, "")
		step("list conversations", err)
		_, err = s.ListConversations(ctx, user, 1, page.NextCursor)
		step("list conversations, next page", err)
		_, err = s.AddMessages(ctx, user, c.ID,
			store.NewMessage{Role: store.RoleUser, Content: "q"},
			store.NewMessage{Role: store.RoleAssistant, Content: "a"})
		step("add messages", err)
		msgs, err := s.ListMessages(ctx, user, c.ID, 1, "")
		step("list messages", err)
		_, err = s.ListMessages(ctx, user, c.ID, 1, msgs.NextCursor)
		step("list messages, next page", err)
		// A chat turn: its start charged in its own transaction (a batch
		// and then its COMMIT), the answer's end, regenerate's read.
		generous := store.RateLimit{PerMinute: 1000, Burst: 1000}
		_, err = s.CreateConversationLimited(ctx, user, "limited", "write", generous)
		step("create conversation with its token", err)
		_, started, err := s.StartTurn(ctx, user, c.ID, &store.Charge{Budget: "chat", Limit: generous}, 10, "",
			store.NewMessage{Role: store.RoleUser, Content: "q?"},
			store.NewMessage{Role: store.RoleAssistant, Status: store.StatusStreaming})
		step("start a turn", err)
		g.Expect(started).To(HaveLen(2))
		_, err = s.FinishAnswer(ctx, user, store.NewMessage{ID: started[1].ID, Role: store.RoleAssistant, Content: "a.", Status: store.StatusComplete})
		step("finish the answer", err)
		_, err = s.QuestionOf(ctx, user, c.ID, started[1].ID)
		step("the answer's question", err)
		// A refusal reads the wait in a statement of its own.
		one := store.RateLimit{PerMinute: 1, Burst: 1}
		calls++
		budget := fmt.Sprintf("probe-%d", calls) // a full budget each run
		step("take the only token", s.TakeRateToken(ctx, user, budget, one))
		var limited *store.RateLimitedError
		err = s.TakeRateToken(ctx, user, budget, one)
		g.Expect(errors.As(err, &limited)).To(BeTrue(), "refused: %v", err)
		step("refused token", nil)
	}

	// Every statement twice: a statement cache would prepare on the first run.
	// A user of each call's own (the two pools may get the same backend pid).
	user := fmt.Sprintf("%s-%t", t.Name(), wipeToo)
	workload(user)
	workload(user)
	var prepared int
	var samePID int
	g.Expect(pool.QueryRow(ctx, "SELECT count(*), pg_backend_pid() FROM pg_prepared_statements").Scan(&prepared, &samePID)).To(Succeed())
	g.Expect(samePID).To(Equal(pid), "the check must run on the connection that ran the queries")
	if wipeToo {
		wipe = true
		workload(user + "w")
		workload(user + "w")
	}
	return prepared
}

// wakingDatabase is a loopback TCP proxy in front of the real PostgreSQL that
// behaves like a serverless database waking up: for wakeAfter from the first
// connection it turns connections away, alternately by hanging up and by
// answering the startup message with "the database system is starting up"
// (SQLSTATE 57P03); after that it forwards bytes both ways.
type wakingDatabase struct {
	addr string

	target    func() (net.Conn, error)
	wakeAfter time.Duration
	ln        net.Listener

	mu         sync.Mutex
	first      time.Time
	closed     int
	startingUp int
	conns      []net.Conn
	wg         sync.WaitGroup
}

func startWakingDatabase(t *testing.T, dbURL string, wakeAfter time.Duration) (*wakingDatabase, string) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	network, address := "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if strings.HasPrefix(cfg.Host, "/") { // DATABASE_URL on a unix socket
		network, address = "unix", filepath.Join(cfg.Host, ".s.PGSQL."+strconv.Itoa(int(cfg.Port)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &wakingDatabase{addr: ln.Addr().String(), ln: ln, wakeAfter: wakeAfter,
		target: func() (net.Conn, error) { return net.Dial(network, address) }}
	w.wg.Add(1)
	go w.serve()
	t.Cleanup(w.close)

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = w.addr
	q := u.Query()
	q.Del("host")
	q.Del("port")
	u.RawQuery = q.Encode()
	return w, u.String()
}

func (w *wakingDatabase) serve() {
	defer w.wg.Done()
	for {
		c, err := w.ln.Accept()
		if err != nil {
			return
		}
		w.mu.Lock()
		if w.first.IsZero() {
			w.first = time.Now()
		}
		asleep := time.Since(w.first) < w.wakeAfter
		w.conns = append(w.conns, c)
		w.mu.Unlock()
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			if asleep {
				w.refuse(c)
			} else {
				w.forward(c)
			}
		}()
	}
}

// refuse reads the client's startup message, then hangs up without a word or
// answers like PostgreSQL during start-up, in turn. Connections that are not
// a session start (pgx's cancel request after a failed attempt) are dropped
// uncounted.
func (w *wakingDatabase) refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	be := pgproto3.NewBackend(c, c)
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		switch msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := c.Write([]byte("N")); err != nil { // no encryption; the client goes on in clear
				return
			}
			continue
		case *pgproto3.StartupMessage:
		default:
			return
		}
		w.mu.Lock()
		hangUp := (w.closed+w.startingUp)%2 == 0
		if hangUp {
			w.closed++
		} else {
			w.startingUp++
		}
		w.mu.Unlock()
		if !hangUp {
			be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P03",
				Message: "the database system is starting up"})
			_ = be.Flush()
		}
		return
	}
}

func (w *wakingDatabase) forward(c net.Conn) {
	defer c.Close()
	up, err := w.target()
	if err != nil {
		return
	}
	defer up.Close()
	w.mu.Lock()
	w.conns = append(w.conns, up)
	w.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done // either side hung up: closing both ends the other copy
}

func (w *wakingDatabase) close() {
	_ = w.ln.Close()
	w.mu.Lock()
	for _, c := range w.conns {
		_ = c.Close()
	}
	w.mu.Unlock()
	w.wg.Wait()
}

func (w *wakingDatabase) rejected() (closed, startingUp int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed, w.startingUp
}

// A serverless database (Neon) takes a moment to wake up: Open keeps retrying
// with backoff and succeeds once it answers, within ConnectTimeout.
func TestOpenWaitsForTheDatabaseToWakeUp(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dbURL := pgtest.New(t)
	_, err := migrations.Migrate(ctx, dbURL, nil, nil) // directly, not through the proxy
	g.Expect(err).NotTo(HaveOccurred())
	const wakeAfter = time.Second
	w, proxied := startWakingDatabase(t, dbURL, wakeAfter)

	var logs testutil.SyncBuffer
	start := time.Now()
	pool, err := store.Open(ctx, proxied, store.Options{
		ConnectTimeout: 15 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
	})
	g.Expect(err).NotTo(HaveOccurred(), "logs:\n%s", logs.String())
	defer pool.Close()
	s := store.New(pool)

	// It was turned away both ways while asleep, and waited for the wake-up.
	closed, startingUp := w.rejected()
	g.Expect(closed).To(BeNumerically(">=", 1))
	g.Expect(startingUp).To(BeNumerically(">=", 1))
	g.Expect(time.Since(start)).To(BeNumerically(">=", wakeAfter))
	g.Expect(strings.Count(logs.String(), "database not reachable yet, retrying")).To(BeNumerically(">=", 2))

	// The store works through the proxy.
	err = s.SyncUser(ctx, "alice", "a@example.com", "A")
	g.Expect(err).NotTo(HaveOccurred())
	u, err := s.GetUser(ctx, "alice")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u.Email).To(Equal("a@example.com"))
}

// DATABASE_URL may choose pgx's statement cache itself
// (default_query_exec_mode=cache_statement: a direct connection, or
// PgBouncer 1.21+ with max_prepared_statements): then statements are
// prepared once per connection instead of parsed on every run.
func TestDatabaseURLChoosesTheExecMode(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	dbURL := pgtest.New(t)
	_, err := migrations.Migrate(ctx, dbURL, nil, nil)
	g.Expect(err).NotTo(HaveOccurred())
	u, err := url.Parse(dbURL)
	g.Expect(err).NotTo(HaveOccurred(), "pgtest gives a URL")
	q := u.Query()
	q.Set("default_query_exec_mode", "cache_statement")
	u.RawQuery = q.Encode()
	pool, err := store.Open(ctx, u.String(), store.Options{ConnectTimeout: 10 * time.Second, MaxConns: 1})
	g.Expect(err).NotTo(HaveOccurred())
	defer pool.Close()
	s := store.New(pool)
	err = s.SyncUser(ctx, "alice", "a@example.com", "A")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.CheckUser(ctx, "alice")).To(Succeed())
	var prepared int
	g.Expect(pool.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_statements").Scan(&prepared)).To(Succeed())
	g.Expect(prepared).To(BeNumerically(">=", 2), "the statements run were prepared")
}
