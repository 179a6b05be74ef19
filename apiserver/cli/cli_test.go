package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/auth"
	"github.com/chatbackend/chatbackend/apiserver/cli"
	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/apiserver/httpapi"
	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
	"github.com/chatbackend/chatbackend/internal/betterauthtest"
	"github.com/chatbackend/chatbackend/internal/pgtest"
	"github.com/chatbackend/chatbackend/internal/testutil"
	"github.com/chatbackend/chatbackend/internal/version"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = cli.Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// clearEnv unsets the variables the commands read, so the developer's shell
// cannot leak into the test.
func clearEnv(t *testing.T) {
	for _, k := range envvar.All {
		t.Setenv(k, "")
	}
}

func TestVersion(t *testing.T) {
	g := NewWithT(t)
	code, out, _ := run("version")
	g.Expect(code).To(Equal(0))
	g.Expect(out).To(Equal(version.Version + "\n"))
	// The flag prints cobra's default line (no custom template: see NewRoot).
	code, out, _ = run("--version")
	g.Expect(code).To(Equal(0))
	g.Expect(out).To(Equal("chat-apiserver version " + version.Version + "\n"))
}

func TestMigrate(t *testing.T) {
	g := NewWithT(t)
	db := pgtest.New(t) // before clearEnv: pgtest honours DATABASE_URL
	clearEnv(t)
	t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/pooled?sslmode=disable")
	// The direct URL wins over the pooled one.
	t.Setenv("DATABASE_DIRECT_URL", db)
	code, out, errOut := run("migrate")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(ContainSubstring("applied 00001_init.sql"))

	code, out, _ = run("migrate")
	g.Expect(code).To(Equal(0))
	g.Expect(out).NotTo(ContainSubstring("applied 0"))
	g.Expect(out).To(ContainSubstring("up to date"))
}

// A database migrated by a newer release (a rollback of the server, an old
// Job re-run) is not "up to date": migrate says the schema is newer than it
// knows and fails, changing nothing.
func TestMigrateRefusesANewerSchema(t *testing.T) {
	g := NewWithT(t)
	db := pgtest.New(t)
	clearEnv(t)
	t.Setenv("DATABASE_URL", db)
	code, _, errOut := run("migrate")
	g.Expect(code).To(Equal(0), errOut)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close(ctx)
	newer := migrations.Latest() + 1
	_, err = conn.Exec(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, newer)
	g.Expect(err).NotTo(HaveOccurred())

	code, out, errOut := run("migrate")
	g.Expect(code).NotTo(Equal(0), out)
	g.Expect(out).NotTo(ContainSubstring("up to date"))
	g.Expect(errOut).To(ContainSubstring(fmt.Sprintf("the database schema is at version %d, newer than this binary's %d", newer, migrations.Latest())))
	g.Expect(strings.Count(strings.TrimSpace(errOut), "\n")).To(BeZero(), "one line: %s", errOut)
	var versions int
	g.Expect(conn.QueryRow(ctx, `SELECT count(*) FROM goose_db_version`).Scan(&versions)).To(Succeed())
	g.Expect(versions).To(BeEquivalentTo(migrations.Latest() + 2)) // version 0, 1..Latest, newer
}

// TestMigrateWaitsForTheDatabase: a migrations Job started while its
// database is starting or failing over waits for it (as serve does) rather
// than failing at once. The database here comes up, on the address migrate
// dials, a second and a half after migrate started.
func TestMigrateWaitsForTheDatabase(t *testing.T) {
	g := NewWithT(t)
	db := pgtest.New(t) // before clearEnv: pgtest honours DATABASE_URL
	clearEnv(t)
	target, err := url.Parse(db)
	g.Expect(err).NotTo(HaveOccurred())
	addr := testutil.FreeAddr(t)
	late := *target
	late.Host = addr
	t.Setenv("DATABASE_URL", late.String())

	go func() {
		time.Sleep(1500 * time.Millisecond)
		forward(t, addr, target.Host)
	}()
	start := time.Now()
	code, out, errOut := run("migrate", "--connect-timeout=30s")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(time.Since(start)).To(BeNumerically(">=", 1500*time.Millisecond), "it did wait")
	g.Expect(out).To(ContainSubstring("applied 00001_init.sql"))
}

// forward listens on addr from now on and relays each connection to the
// PostgreSQL at to, until the test ends.
func forward(t *testing.T, addr, to string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("listen on %s: %v", addr, err)
		return
	}
	t.Cleanup(func() { _ = l.Close() })
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer func() { _ = c.Close() }()
			up, err := net.DialTimeout("tcp", to, 5*time.Second)
			if err != nil {
				return
			}
			defer func() { _ = up.Close() }()
			go func() { _, _ = io.Copy(up, c) }()
			_, _ = io.Copy(c, up)
		}()
	}
}

func TestErrorsAreOneLineAndNonZero(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"migrate without database", nil, []string{"migrate"}, "DATABASE_URL"},
		{"migrate unreachable database", map[string]string{"DATABASE_URL": "postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"},
			[]string{"migrate", "--connect-timeout=2s"}, "connect to database"},
		{"serve without issuer", map[string]string{"DATABASE_URL": "postgres://u@h/db"}, []string{"serve"}, "BETTER_AUTH_URL: not set"},
		{"serve bad algorithms", map[string]string{"DATABASE_URL": "postgres://u@h/db", "BETTER_AUTH_URL": "http://a", "JWT_ALGORITHMS": "HS256"},
			[]string{"serve"}, "JWT_ALGORITHMS"},
		{"unknown command", nil, []string{"frobnicate"}, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, errOut := run(tc.args...)
			g.Expect(code).NotTo(Equal(0))
			g.Expect(errOut).To(HavePrefix("chat-apiserver: "))
			g.Expect(errOut).To(ContainSubstring(tc.want))
			g.Expect(strings.Count(errOut, "\n")).To(Equal(1), errOut)
			g.Expect(errOut).NotTo(ContainSubstring("hunter2"))
		})
	}
}

// A bad setting is reported before serve waits (up to a minute) for the
// database: RAG and rate-limit variables are parsed up front like the rest.
func TestServeBadSettingFailsBeforeConnecting(t *testing.T) {
	for _, bad := range []struct{ key, value string }{
		{"RAG_TOP_K", "0"},
		{"QDRANT_HYBRID", "maybe"},
		{"CHAT_RATE_LIMIT_PER_MINUTE", "lots"},
	} {
		t.Run(bad.key, func(t *testing.T) {
			g := NewWithT(t)
			clearEnv(t)
			// Nothing listens on port 1: a connect attempt would retry
			// until store.Open gives up.
			t.Setenv("DATABASE_URL", "postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable")
			t.Setenv("BETTER_AUTH_URL", "http://127.0.0.1:1")
			t.Setenv("LISTEN_ADDR", testutil.FreeAddr(t))
			t.Setenv("METRICS_ADDR", testutil.FreeAddr(t))
			t.Setenv(bad.key, bad.value)

			// Far below the database wait; were serve to reach store.Open,
			// the cancelled context would end it with a database error
			// instead of the variable's name.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			root := cli.NewRoot()
			root.SetArgs([]string{"serve"})
			var logs bytes.Buffer
			root.SetOut(io.Discard)
			root.SetErr(&logs)
			err := root.ExecuteContext(ctx)
			g.Expect(err).To(MatchError(HavePrefix(bad.key + ": ")))
			g.Expect(ctx.Err()).To(BeNil(), "failed before the deadline")
			g.Expect(logs.String()).NotTo(ContainSubstring("starting chat-apiserver"), "nothing started")
		})
	}
}

// From start-up until the database answers, serve's /metrics (up before the
// wait) exports chatbackend_dependency_up{dependency="database"} 0: a pod
// that cannot reach its database is what ChatBackendDatabaseUnreachable
// must see, not a missing series. The wait still gives up, after
// --connect-timeout, with the database error.
func TestServeReportsTheDatabaseDownWhileWaiting(t *testing.T) {
	g := NewWithT(t)
	clearEnv(t)
	// A free port nobody listens on: every connect attempt is refused.
	t.Setenv("DATABASE_URL", "postgres://u:hunter2@"+testutil.FreeAddr(t)+"/db?sslmode=disable")
	t.Setenv("BETTER_AUTH_URL", "http://127.0.0.1:1")
	metrics := testutil.FreeAddr(t)
	t.Setenv("LISTEN_ADDR", testutil.FreeAddr(t))
	t.Setenv("METRICS_ADDR", metrics)

	const connectTimeout = 4 * time.Second
	root := cli.NewRoot()
	root.SetArgs([]string{"serve", "--connect-timeout=" + connectTimeout.String()})
	root.SetErr(io.Discard)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(context.Background()) }()

	const down = `chatbackend_dependency_up{dependency="database"} 0`
	g.Eventually(func() string {
		res, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}).WithTimeout(connectTimeout/2).WithPolling(50*time.Millisecond).Should(ContainSubstring(down), "while serve waits for the database")

	var err error
	g.Eventually(done).WithTimeout(connectTimeout+10*time.Second).Should(Receive(&err), "the wait is bounded")
	g.Expect(err).To(MatchError(ContainSubstring("connect to database")))
	g.Expect(err.Error()).NotTo(ContainSubstring("hunter2"))
	g.Expect(time.Since(start)).To(BeNumerically(">=", connectTimeout), "it waited for --connect-timeout")
	_, dialErr := net.DialTimeout("tcp", metrics, time.Second)
	g.Expect(dialErr).To(HaveOccurred(), "metrics port closed once serve gave up")
}

// serve against a real PostgreSQL and BetterAuth: ready, metrics on their own
// port, and a clean exit when asked to stop.
func TestServe(t *testing.T) {
	g := NewWithT(t)
	var logs testutil.SyncBuffer
	srv := startServing(t, &logs, nil)
	ba, api, metrics := srv.ba, srv.api, srv.metrics
	get := func(url string) (int, string) {
		res, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	ba.SignUp(t, "carol@example.com", "Carol", "correct horse battery staple")
	token := ba.Token(t, "carol@example.com", "correct horse battery staple")
	req, _ := http.NewRequest("GET", "http://"+api+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	res.Body.Close()
	g.Expect(res.StatusCode).To(Equal(200))

	code, body := get("http://" + metrics + "/metrics")
	g.Expect(code).To(Equal(200))
	g.Expect(body).To(ContainSubstring(`chatbackend_http_requests_total{code="200",method="GET",route="/v1/me"} 1`))
	g.Expect(body).To(ContainSubstring("chatbackend_jwks_keys"))
	g.Expect(body).To(ContainSubstring(`chatbackend_dependency_up{dependency="database"} 1`))
	g.Expect(body).To(MatchRegexp(`(?m)^chatbackend_db_pool_acquires_total [1-9]`), "the request's acquires are counted")
	// The pool opens every connection it may use at start-up, before a
	// burst needs them.
	full := fmt.Sprintf("chatbackend_db_pool_total_connections %d\n", config.DefaultDatabaseMaxConns)
	g.Eventually(func() string { _, body := get("http://" + metrics + "/metrics"); return body }).
		WithTimeout(10 * time.Second).WithPolling(50 * time.Millisecond).Should(ContainSubstring(full))
	g.Expect(body).To(ContainSubstring("go_goroutines"))
	code, _ = get("http://" + api + "/metrics")
	g.Expect(code).To(Equal(404), "metrics are not on the API port")

	srv.stop(g)
	_, err = net.DialTimeout("tcp", api, time.Second)
	g.Expect(err).To(HaveOccurred(), "API port closed after shutdown")
	g.Expect(logs.String()).NotTo(ContainSubstring(token))
}

// DATABASE_MIN_CONNS=0: the pool opens connections as statements need
// them, so a tight connection budget is not spent by idle replicas. After
// start-up it holds what start-up's own concurrent statements opened (a
// few: 3 when this was written), far from the
// DATABASE_MAX_CONNS of 20 that the default would fill it to within
// moments (as TestServe shows).
func TestServeMinConnsZero(t *testing.T) {
	g := NewWithT(t)
	srv := startServing(t, io.Discard, map[string]string{envvar.DatabaseMaxConns: "20", envvar.DatabaseMinConns: "0"})
	defer srv.stop(g)
	total := regexp.MustCompile(`(?m)^chatbackend_db_pool_total_connections (\d+)$`)
	g.Consistently(func(g Gomega) {
		res, err := http.Get("http://" + srv.metrics + "/metrics")
		g.Expect(err).NotTo(HaveOccurred())
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		g.Expect(err).NotTo(HaveOccurred())
		m := total.FindSubmatch(b)
		g.Expect(m).NotTo(BeNil(), "the pool's metrics are served")
		n, err := strconv.Atoi(string(m[1]))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(n).To(BeNumerically("<", 10))
	}).WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

// The header limits, at their boundaries, on the server `serve` runs: a
// BetterAuth user with a very long name (BetterAuth does not bound it) gets
// in while the token fits auth.MaxTokenBytes, gets a 431 in the error JSON
// beyond it (not a 401 that would only send them to sign in again), and
// headers beyond httpapi.MaxHeaderBytes get net/http's own 431.
func TestServeHeaderLimits(t *testing.T) {
	g := NewWithT(t)
	srv := startServing(t, io.Discard, nil)
	defer srv.stop(g)
	ba, api := srv.ba, srv.api

	me := func(token string, extra ...string) (int, string, string) {
		req, err := http.NewRequest("GET", "http://"+api+"/v1/me", nil)
		g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Authorization", "Bearer "+token)
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), string(b)
	}
	tokenFor := func(email string, nameLen int) string {
		ba.SignUp(t, email, strings.Repeat("n", nameLen), "correct horse battery staple")
		return ba.Token(t, email, "correct horse battery staple")
	}

	long := tokenFor("long@example.com", 20_000)
	g.Expect(len(long)).To(BeNumerically(">", 16<<10), "over the old limit")
	g.Expect(len(long)).To(BeNumerically("<=", auth.MaxTokenBytes))
	code, _, body := me(long)
	g.Expect(code).To(Equal(http.StatusOK), body)

	tooLong := tokenFor("toolong@example.com", 26_000)
	g.Expect(len(tooLong)).To(BeNumerically(">", auth.MaxTokenBytes))
	g.Expect(len(tooLong)).To(BeNumerically("<", httpapi.MaxHeaderBytes-4096))
	code, ctype, body := me(tooLong)
	g.Expect(code).To(Equal(http.StatusRequestHeaderFieldsTooLarge), body)
	g.Expect(ctype).To(HavePrefix("application/json"))
	g.Expect(body).To(ContainSubstring(`"code":"header_too_large"`))

	// The whole header block over the server's limit (net/http allows 4 KiB
	// of slack above MaxHeaderBytes).
	code, _, _ = me(long, "X-Padding", strings.Repeat("p", httpapi.MaxHeaderBytes-len(long)+8192))
	g.Expect(code).To(Equal(http.StatusRequestHeaderFieldsTooLarge))
	code, _, _ = me(long, "X-Padding", strings.Repeat("p", httpapi.MaxHeaderBytes-len(long)-1024))
	g.Expect(code).To(Equal(http.StatusOK), "just under the limit")
}

// serving is `chat-apiserver serve` run in-process on a migrated real
// PostgreSQL and a real BetterAuth, ready (/readyz 200).
type serving struct {
	ba           *betterauthtest.Server
	api, metrics string
	cancel       context.CancelFunc
	done         chan error
}

func startServing(t *testing.T, logs io.Writer, env map[string]string) *serving {
	t.Helper()
	g := NewWithT(t)
	db := pgtest.New(t)
	clearEnv(t)
	s := &serving{ba: betterauthtest.Start(t), api: testutil.FreeAddr(t), metrics: testutil.FreeAddr(t), done: make(chan error, 1)}
	t.Setenv("DATABASE_URL", db)
	g.Expect(cli.Main([]string{"migrate"}, io.Discard, io.Discard)).To(Equal(0))
	t.Setenv("BETTER_AUTH_URL", s.ba.URL)
	t.Setenv("LISTEN_ADDR", s.api)
	t.Setenv("METRICS_ADDR", s.metrics)
	for k, v := range env {
		t.Setenv(k, v)
	}
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(s.cancel)
	root := cli.NewRoot()
	root.SetArgs([]string{"serve"})
	// Kept for the failure message whatever the caller does with them.
	var kept testutil.SyncBuffer
	root.SetErr(io.MultiWriter(logs, &kept))
	go func() { s.done <- root.ExecuteContext(ctx) }()
	// Each probe is bounded: the API port listens before serve's slow
	// parts, so a request can sit in its backlog until the handler is up.
	probe := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for {
		select {
		case err := <-s.done:
			// serve gave up: say why, not "timed out waiting for 200".
			t.Fatalf("serve exited before it was ready: %v\nits log:\n%s", err, kept.String())
		default:
		}
		res, err := probe.Get("http://" + s.api + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, b)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready after 20s; last /readyz: %s\nits log:\n%s", last, kept.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop does what SIGTERM does through signal.NotifyContext and expects a
// clean exit.
func (s *serving) stop(g Gomega) {
	s.cancel()
	g.Eventually(s.done).WithTimeout(30 * time.Second).Should(Receive(BeNil()))
}
