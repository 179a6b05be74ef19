//go:build bench

// Package benchhttp is `make bench-http` and `make bench-stream`: the
// real chat-apiserver, built and run as its own process on a real
// PostgreSQL, measured under load side by side with a plain Go floor
// (./floor) in the same run. It prints tables and asserts nothing about
// speed: the figures are for README.md's performance section, where the
// targets are compared with them.
package benchhttp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

var (
	duration    = flag.Duration("duration", 10*time.Second, "how long each scenario drives each server")
	warmup      = flag.Duration("warmup", 2*time.Second, "load before each measurement, not counted")
	rounds      = flag.Int("rounds", 1, "measure each scenario this many times, floor and chat-apiserver taking turns (the order reversed every other round: use an even number to balance it); the figures pool the rounds (on a shared machine, drift then hits both alike)")
	conns       = flag.Int("conns", 32, "concurrent keep-alive connections")
	users       = flag.Int("users", 1000, "users, each with -conversations conversations; tokens rotate across them")
	perUser     = flag.Int("conversations", 50, "conversations per user")
	depth       = flag.Int("depth", 100_000, "messages in the long history the keyset scenarios page through")
	only        = flag.String("scenarios", "", "comma-separated scenarios to run, of list, first-page, deep-page, create, message, rejected, rejected-distinct (empty: all)")
	profile     = flag.String("profile", "", "directory: write chat-apiserver's CPU and allocation profiles and execution trace of each scenario (bench-stream: level) there, and its log (stderr: -server-env GODEBUG=gctrace=1 writes there)")
	execMode    = flag.String("exec-mode", "", "pgx default_query_exec_mode added to chat-apiserver's DATABASE_URL, e.g. exec (unprepared, for poolers without prepared statements); empty: the server's own default (cache_statement, the floor's)")
	baselineBin = flag.String("baseline-bin", "", "another chat-apiserver binary (e.g. built from main) to measure in the same run, taking turns with the measured binary (this tree's, or -server-bin) and the floor; its rows are named baseline")
	extraEnv    = flag.String("server-env", "", "comma-separated KEY=VALUE settings for chat-apiserver, e.g. DATABASE_MAX_CONNS=4")
)

// serverEnv is the settings of chat-apiserver: base, then -server-env.
func serverEnv(t *testing.T, base map[string]string) map[string]string {
	t.Helper()
	for kv := range strings.SplitSeq(*extraEnv, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("-server-env: %q is not KEY=VALUE", kv)
		}
		base[k] = v
	}
	return base
}

// scenario is one kind of request, driven against each server that
// implements it.
type scenario struct {
	key   string // for -scenarios
	name  string
	want  int  // the status every answer must have
	floor bool // the floor implements it
	req   request
}

// TestBenchHTTP drives each scenario against the floor and chat-apiserver
// and prints one table.
func TestBenchHTTP(t *testing.T) {
	dir := t.TempDir()
	apiserverBin, floorBin := *serverBin, build(t, dir, "hack/bench-http/floor")
	if apiserverBin == "" {
		apiserverBin = build(t, dir, "apiserver/cmd/chat-apiserver")
	}
	dbURL := pgtest.New(t)
	pg := postmaster(t, dbURL)
	s := seedDatabase(t, dbURL, *users, *perUser, *depth)
	iss := newIssuer(t)
	tokens := make([]string, *users)
	for n := range tokens {
		tokens[n] = iss.token(t, userID(n), iss.key)
	}
	rejected := iss.token(t, userID(0), iss.wrong)
	deep := cursorAt(t, dbURL, s.long, *depth-20)

	serverDB := dbURL
	if *execMode != "" {
		serverDB += sep(dbURL) + "default_query_exec_mode=" + *execMode
	}
	server, metrics := startAPIServer(t, "chat-apiserver", apiserverBin, serverDB, iss, *profile != "", dir)
	var baseline *proc
	if *baselineBin != "" {
		baseline, _ = startAPIServer(t, "baseline", *baselineBin, serverDB, iss, false, dir)
	}
	// The floor's pool holds as many connections as chat-apiserver's: with
	// pgx's default (4 on 2 cores) against the server's 10, the two queued
	// 32 clients at different places, and PostgreSQL, on the same cores,
	// ran 10 backends for one and 4 for the other (the server's p99 1.2x
	// the floor's, 0.96x at 4 each; 2026-12-02): a comparison of pool
	// sizes, not of servers.
	floorDB := dbURL + sep(dbURL) + "pool_max_conns=" + poolSize(t)
	floor := start(t, "floor", floorBin, nil, map[string]string{
		"DATABASE_URL": floorDB, "JWKS_URL": iss.jwksURL(), "ISSUER": iss.url, "LISTEN_ADDR": "127.0.0.1:0",
	}, "", "/healthz", filepath.Join(dir, "floor.log"))
	idle := map[string]int64{"chat-apiserver": server.rss(t), "floor": floor.rss(t)}
	idleHeap := scrape(t, metrics)["go_memstats_heap_inuse_bytes"]
	idleFile := server.binaryPages(t)
	idleFile["anon"] = server.status(t, "RssAnon")
	if *profile != "" {
		fetch(t, "http://"+metrics+"/debug/pprof/heap", filepath.Join(*profile, "idle.heap.pprof"))
	}

	rotate := func(i int64) string { return tokens[i%int64(len(tokens))] }
	scenarios := []scenario{
		{key: "list", name: "list conversations", want: 200, floor: true, req: func(i int64) (string, string, string, string) {
			return "GET", "/v1/conversations", rotate(i), ""
		}},
		{key: "first-page", name: "messages, first page", want: 200, floor: true, req: func(int64) (string, string, string, string) {
			return "GET", "/v1/conversations/" + s.long + "/messages", tokens[0], ""
		}},
		{key: "deep-page", name: fmt.Sprintf("messages, page at %d", *depth-20), want: 200, floor: true, req: func(int64) (string, string, string, string) {
			return "GET", "/v1/conversations/" + s.long + "/messages?cursor=" + deep, tokens[0], ""
		}},
		{key: "create", name: "create conversation", want: 201, floor: true, req: func(i int64) (string, string, string, string) {
			return "POST", "/v1/conversations", rotate(i), `{"title":"bench"}`
		}},
		{key: "message", name: "post message (offline answer)", want: 200, req: func(i int64) (string, string, string, string) {
			n := i % int64(len(tokens))
			return "POST", "/v1/conversations/" + s.latest[n] + "/messages", tokens[n], `{"content":"How do I install the operator?"}`
		}},
		{key: "rejected", name: "rejected token (bad signature)", want: 401, floor: true, req: func(int64) (string, string, string, string) {
			return "GET", "/v1/conversations", rejected, ""
		}},
		// An attacker who never sends the same token twice: each costs its
		// signature check (chat-apiserver remembers rejected tokens).
		{key: "rejected-distinct", name: "rejected token, each one new (bad signature)", want: 401, floor: true, req: func(int64) (string, string, string, string) {
			return "GET", "/v1/conversations", forge(rejected), ""
		}},
	}
	// Each user's first request: chat-apiserver writes the users row and
	// verifies the token in full, once per token (both cached from then
	// on, as for a client that keeps using its token).
	servers := []*proc{server}
	if baseline != nil {
		servers = []*proc{baseline, server}
	}
	for _, p := range append([]*proc{floor}, servers...) {
		prime(p.base, tokens)
	}
	var rows []row
	for _, sc := range scenarios {
		if *only != "" && !contains(strings.Split(*only, ","), sc.key) {
			continue
		}
		targets := servers
		if sc.floor {
			targets = append([]*proc{floor}, servers...)
		}
		pooled := make([]result, len(targets))
		for round := range *rounds {
			// Every other round in reverse order: create and message grow
			// the tables, so whoever goes later meets bigger ones; with an
			// even -rounds each goes first as often.
			for j := range targets {
				i := j
				if round%2 == 1 {
					i = len(targets) - 1 - j
				}
				p := targets[i]
				_ = drive(p.base, *conns, *warmup, sc.want, sc.req)
				stopProfile := func() {}
				if *profile != "" && p == server && round == 0 {
					stopProfile = profileDuring(t, metrics, *duration, slug(sc.name))
				}
				c0, db0 := p.cpu(t), pg.cpu(t)
				r := drive(p.base, *conns, *duration, sc.want, sc.req)
				r.cpu, r.dbCPU = p.cpu(t)-c0, pg.cpu(t)-db0
				stopProfile()
				pooled[i] = pooled[i].add(r)
			}
		}
		for i, p := range targets {
			rows = append(rows, row{scenario: sc.name, server: p.name, r: pooled[i]})
		}
	}
	report(rows, idle, idleHeap, idleFile, poolSize(t))
}

// poolSize is chat-apiserver's DATABASE_MAX_CONNS: -server-env's, or the
// server's default.
func poolSize(t *testing.T) string {
	t.Helper()
	if n, ok := serverEnv(t, map[string]string{})[envvar.DatabaseMaxConns]; ok {
		return n
	}
	return strconv.Itoa(config.DefaultDatabaseMaxConns)
}

// sep is what joins one more parameter to the URL u.
func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

// startAPIServer starts chat-apiserver bin as name on the database at
// dbURL and returns it and its metrics listener's address.
func startAPIServer(t *testing.T, name, bin, dbURL string, iss *issuer, pprof bool, dir string) (*proc, string) {
	t.Helper()
	api, metrics := freeAddr(t), freeAddr(t)
	args := []string{"serve"}
	if pprof {
		args = append(args, "--pprof")
	}
	return start(t, name, bin, args, serverEnv(t, map[string]string{
		"DATABASE_URL": dbURL, "BETTER_AUTH_URL": iss.url, "JWKS_URL": iss.jwksURL(),
		"LISTEN_ADDR": api, "METRICS_ADDR": metrics, "OPENAI_API_KEY": "",
		// The load is a benchmark's, not abuse: no user may run out.
		"CHAT_RATE_LIMIT_PER_MINUTE": "1000000", "CHAT_RATE_LIMIT_BURST": "1000000",
		"WRITE_RATE_LIMIT_PER_MINUTE": "1000000", "WRITE_RATE_LIMIT_BURST": "1000000",
	}), "http://"+api, "/readyz", filepath.Join(dir, name+".log")), metrics
}

// forge replaces the signature of token by random bytes of the same
// length: a token no server has seen, refused for its signature.
func forge(token string) string {
	i := strings.LastIndexByte(token, '.')
	sig := make([]byte, base64.RawURLEncoding.DecodedLen(len(token)-i-1))
	_, _ = rand.Read(sig)
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// prime sends one list request with each token, over -conns connections.
func prime(base string, tokens []string) {
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(tokens)); i = next.Add(1) - 1 {
				req, err := http.NewRequest(http.MethodGet, base+"/v1/conversations", nil)
				if err != nil {
					panic(err)
				}
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
}

// row is one line of the table.
type row struct {
	scenario, server string
	r                result
}

func report(rows []row, idle map[string]int64, idleHeap float64, idleFile map[string]int64, pool string) {
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("\nbench-http: %d connections, %d x %s per scenario and server, %d users x %d conversations, %s database connections per server, GOMAXPROCS %d, load average %s\n",
		*conns, *rounds, *duration, *users, *perUser, pool, runtime.GOMAXPROCS(0), strings.Join(strings.Fields(string(load))[:3], " "))
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tserver\treq/s\tp50\tp99\terrors\tCPU/req\tDB CPU/req\treq/s ÷ floor\tp99 ÷ floor\tCPU ÷ floor\tCPU+DB ÷ floor\t")
	floor := map[string]result{}
	var readCPU time.Duration
	rejectCPU := map[string]time.Duration{}
	for _, x := range rows {
		var ratios [4]string
		if x.server == "floor" {
			floor[x.scenario] = x.r
		} else if f, ok := floor[x.scenario]; ok {
			cpu, fcpu := x.r.cpuPerRequest(), f.cpuPerRequest()
			ratios = [4]string{
				fmt.Sprintf("%.2fx", x.r.perSecond()/f.perSecond()),
				fmt.Sprintf("%.2fx", float64(x.r.quantile(.99))/float64(f.quantile(.99))),
				fmt.Sprintf("%.2fx", float64(cpu)/float64(fcpu)),
				fmt.Sprintf("%.2fx", float64(cpu+x.r.dbCPUPerRequest())/float64(fcpu+f.dbCPUPerRequest())),
			}
		}
		if x.server == "chat-apiserver" {
			switch {
			case x.scenario == "list conversations":
				readCPU = x.r.cpuPerRequest()
			case strings.HasPrefix(x.scenario, "rejected"):
				rejectCPU[x.scenario] = x.r.cpuPerRequest()
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", x.scenario, x.server, x.r.perSecond(),
			ms(x.r.quantile(.5)), ms(x.r.quantile(.99)), x.r.errors, us(x.r.cpuPerRequest()), us(x.r.dbCPUPerRequest()),
			ratios[0], ratios[1], ratios[2], ratios[3])
	}
	_ = w.Flush()
	for _, x := range rows {
		if cpu := rejectCPU[x.scenario]; readCPU > 0 && cpu > 0 && x.server == "chat-apiserver" {
			fmt.Printf("chat-apiserver CPU of a %s ÷ an authenticated read: %.2f (target ≤ 0.5)\n",
				x.scenario, float64(cpu)/float64(readCPU))
		}
	}
	mib := func(n int64) float64 { return float64(n) / (1 << 20) }
	fmt.Printf("idle RSS before the load: chat-apiserver %.1f MiB: its executable's pages %.1f MiB (code %.1f, read-only data %.1f, data %.1f), "+
		"anonymous %.1f MiB (Go heap in use %.1f MiB); floor %.1f MiB\n",
		mib(idle["chat-apiserver"]), mib(idleFile["r-xp"]+idleFile["r--p"]+idleFile["rw-p"]), mib(idleFile["r-xp"]), mib(idleFile["r--p"]),
		mib(idleFile["rw-p"]), mib(idleFile["anon"]), idleHeap/(1<<20), mib(idle["floor"]))
}

// profileDuring takes a CPU profile and an execution trace of
// chat-apiserver over most of d and, when stopped, its allocation profile
// (cumulative since start), into -profile. The trace shows what a profile
// cannot: where requests wait rather than run (go tool trace -pprof=sync
// NAME.trace: for the database pool, for the network; -pprof=sched: for a
// CPU).
func profileDuring(t *testing.T, metrics string, d time.Duration, name string) func() {
	t.Helper()
	var done sync.WaitGroup
	secs := max(1, int(d.Seconds())-1)
	for kind, file := range map[string]string{"profile": ".cpu.pprof", "trace": ".trace"} {
		done.Go(func() {
			fetch(t, fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", metrics, kind, secs), filepath.Join(*profile, name+file))
		})
	}
	return func() {
		done.Wait()
		fetch(t, "http://"+metrics+"/debug/pprof/allocs", filepath.Join(*profile, name+".allocs.pprof"))
	}
}

func fetch(t *testing.T, url, path string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Error(err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Error(err)
		return
	}
	f, err := os.Create(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Error(err)
	}
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
