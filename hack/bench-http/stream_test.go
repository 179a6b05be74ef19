//go:build bench

package benchhttp

// make bench-stream: how many answer streams (SSE) one chat-apiserver
// holds open at once, and what each costs, with the fake OpenAI server
// answering at a model's pace.

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/chatbackend/chatbackend/internal/openaitest"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

var (
	levels       = flag.String("streams", "100,250,500,1000,2000", "comma-separated numbers of streams to hold open, in turn")
	tokenRate    = flag.Float64("token-rate", 30, "the fake model's tokens per second")
	answerTokens = flag.Int("answer-tokens", 300, "tokens per answer")
	serverBin    = flag.String("server-bin", "", "a chat-apiserver binary to measure instead of building this tree's, by bench-stream and bench-http alike (to compare two versions under the same harness)")
	pin          = flag.Bool("pin", false, "run chat-apiserver (and the floor) alone on core 0 and this process (clients and fake model) and PostgreSQL on the other cores (taskset): one replica on one core, measured; assumes CPUs 0 to NumCPU-1 are all allowed (not under a cpuset that leaves any out)")
	floorOn      = flag.Bool("floor", true, "bench-stream: hold each level's streams on the plain Go floor (./floor) too, taking turns with chat-apiserver")
)

// tokensPerRead is how many tokens' time a client lets pass between two
// reads of an answer after its first delta.
const tokensPerRead = 8

// TestBenchStream ramps the number of concurrently open streams and
// prints, per level, the time to first byte, the latency the server adds
// to the model's first token, and memory, goroutines and CPU per open
// stream, for chat-apiserver and the plain Go floor (./floor, unless
// -floor=false) on the same fake model.
//
// At each level the floor and chat-apiserver hold the level's streams in
// turn, one after the other (never at once: they would share the cores),
// the order reversed every other level. Why not all the floor's levels and
// then all chat-apiserver's: on a shared machine the others' load drifts
// over minutes, and a level takes seconds, so a level's two runs back to
// back meet about the same load and their ratio stays meaningful.
func TestBenchStream(t *testing.T) {
	dir := t.TempDir()
	bin := *serverBin
	if bin == "" {
		bin = build(t, dir, "apiserver/cmd/chat-apiserver")
	}
	var counts []int
	for l := range strings.SplitSeq(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || n < 1 {
			t.Fatalf("-streams: %q", l)
		}
		counts = append(counts, n)
	}
	most := slices.Max(counts)
	dbURL := pgtest.New(t)
	pg := postmaster(t, dbURL)
	s := seedDatabase(t, dbURL, most, 1, 1)
	iss := newIssuer(t)
	tokens := make([]string, most)
	for n := range tokens {
		tokens[n] = iss.token(t, userID(n), iss.key)
	}

	oai := openaitest.Start(t)
	delay := time.Duration(float64(time.Second) / *tokenRate)
	model := &firstTokens{at: map[string]time.Time{}}
	deltas := slices.Repeat([]string{"tok "}, *answerTokens)
	oai.SetReply(func(r openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: deltas, Delay: delay, PromptTokens: 100, CompletionTokens: int64(*answerTokens),
			// When the first token leaves for the server, not when it
			// was due: on a loaded machine the fake's own lateness is not
			// the server's.
			Sending: func(i int) {
				if i == 0 {
					model.record(r, time.Now())
				}
			}}
	})
	env := map[string]string{
		"DATABASE_URL": dbURL, "BETTER_AUTH_URL": iss.url, "JWKS_URL": iss.jwksURL(),
		"OPENAI_API_KEY": openaitest.APIKey, "OPENAI_BASE_URL": oai.URL,
		"CHAT_MAX_STREAMS":           strconv.Itoa(2 * most),
		"CHAT_RATE_LIMIT_PER_MINUTE": "1000000", "CHAT_RATE_LIMIT_BURST": "1000000",
	}
	ingest := exec.Command(bin, "ingest", "--docs", "../e2e/docs", "--site-url", "http://docs.example")
	for k, v := range env {
		ingest.Env = append(ingest.Env, k+"="+v)
	}
	if out, err := ingest.CombinedOutput(); err != nil {
		t.Fatalf("ingest: %v\n%s", err, out)
	}
	api, metrics := freeAddr(t), freeAddr(t)
	env["LISTEN_ADDR"], env["METRICS_ADDR"] = api, metrics
	args := []string{"serve"}
	if *profile != "" {
		args = append(args, "--pprof")
	}
	if *pin {
		moveApart(t, pg)
	}
	bin, args = pinned(bin, args)
	targets := []streamTarget{{p: start(t, "chat-apiserver", bin, args, serverEnv(t, env), "http://"+api, "/readyz",
		filepath.Join(dir, "chat-apiserver.log")), metrics: metrics}}
	if *floorOn {
		bin, args := pinned(build(t, dir, "hack/bench-http/floor"), nil)
		floor := start(t, "floor", bin, args, map[string]string{
			"DATABASE_URL": dbURL, "JWKS_URL": iss.jwksURL(), "ISSUER": iss.url, "LISTEN_ADDR": "127.0.0.1:0",
			"OPENAI_API_KEY": openaitest.APIKey, "OPENAI_BASE_URL": oai.URL,
		}, "", "/healthz", filepath.Join(dir, "floor.log"))
		targets = append([]streamTarget{{p: floor}}, targets...)
	}

	answer := (time.Duration(*answerTokens) * delay).Round(time.Millisecond)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}}
	var out []streamRow
	for i, n := range counts {
		order := slices.Clone(targets)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, tg := range order {
			st := streamer{client: client, base: tg.p.base, model: model, drain: tokensPerRead * delay}
			out = append(out, holdLevel(t, tg, pg, st, s.latest[:n], tokens[:n], answer))
		}
	}
	reportStreams(out, answer)
}

// streamTarget is a server that holds the streams: chat-apiserver, or the
// floor (no metrics address: it has no metrics, and its streams touch no
// database).
type streamTarget struct {
	p       *proc
	metrics string
}

// holdLevel holds one stream per conversation of convs on tg (see
// holdStreams) and measures the level, start to end.
func holdLevel(t *testing.T, tg streamTarget, pg pgProc, s streamer, convs, tokens []string, answer time.Duration) streamRow {
	t.Helper()
	n := len(convs)
	var base map[string]float64
	if tg.metrics != "" {
		base = scrape(t, tg.metrics)
	}
	baseRSS, baseCPU, basePG, baseSelf := tg.p.rss(t), tg.p.cpu(t), pg.cpu(t), selfCPU(t)
	stopProfile := func() {}
	if *profile != "" && tg.metrics != "" {
		stopProfile = profileDuring(t, tg.metrics, answer, fmt.Sprintf("stream-%d", n))
	}
	began := time.Now()
	r := holdStreams(s, convs, tokens, answer)
	// Every stream is past its first delta and none has ended yet.
	r.n, r.server, r.floor = n, tg.p.name, tg.metrics == ""
	per := float64(max(1, r.open))
	r.rss = float64(tg.p.rss(t)-baseRSS) / per
	if !r.floor {
		mid := scrape(t, tg.metrics)
		fmt.Print(poolPerStart(n, base, mid))
		r.heap = (mid["go_memstats_heap_inuse_bytes"] - base["go_memstats_heap_inuse_bytes"]) / per
		r.goroutines = (mid["go_goroutines"] - base["go_goroutines"]) / per
	}
	r.wait()
	r.wall = time.Since(began)
	// The CPU for the level's streams, start to end, per stream that ran:
	// a refused start costs next to nothing, so counting it would lower
	// the CPU per stream and raise the projection.
	ran := time.Duration(max(1, n-r.errors))
	r.cpu = (tg.p.cpu(t) - baseCPU) / ran
	r.pgCPU = (pg.cpu(t) - basePG) / ran
	r.harnessCPU = (selfCPU(t) - baseSelf) / ran
	stopProfile()
	return r.streamRow
}

// moveApart moves PostgreSQL (the postmaster and its processes; the
// backends it forks later inherit their CPUs) and this process (all its
// threads) off core 0, for pinned servers to have it. Other processes of
// the machine are not moved: core 0 is the server's alone among the
// benchmark's processes, not on the machine.
func moveApart(t *testing.T, pg pgProc) {
	t.Helper()
	if runtime.NumCPU() < 2 {
		t.Fatalf("-pin: %d CPU, 2 needed", runtime.NumCPU())
	}
	others := fmt.Sprintf("1-%d", runtime.NumCPU()-1)
	moved := []int{os.Getpid(), pg.pid}
	for _, pid := range pids(t) {
		if f, ok := statFields(pid); ok && f[1] == strconv.Itoa(pg.pid) {
			moved = append(moved, pid)
		}
	}
	for _, pid := range moved {
		if out, err := exec.Command("taskset", "--all-tasks", "--cpu-list", "--pid", others, strconv.Itoa(pid)).CombinedOutput(); err != nil {
			t.Fatalf("-pin: taskset %d: %v\n%s", pid, err, out)
		}
	}
}

// pinned is the command that runs bin with args: on core 0 alone with
// -pin (taskset execs bin: the process is the same), else as it is. The
// floor and chat-apiserver both run there, one after the other.
func pinned(bin string, args []string) (string, []string) {
	if !*pin {
		return bin, args
	}
	return "taskset", append([]string{"--cpu-list", "0", bin}, args...)
}

// firstTokens is when the fake sent each question's first token.
type firstTokens struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (f *firstTokens) record(r openaitest.ChatRequest, at time.Time) {
	if len(r.Messages) == 0 {
		return
	}
	q := r.Messages[len(r.Messages)-1].Content
	if m := questionID.FindString(q); m != "" {
		f.mu.Lock()
		f.at[m] = at
		f.mu.Unlock()
	}
}

func (f *firstTokens) get(id string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.at[id]
	return at, ok
}

var questionID = regexp.MustCompile(`bench-q-[0-9]+-[0-9]+`)

// streamRow is one level's line of the table, for one server.
type streamRow struct {
	server string
	// floor: the floor's row (no heap or goroutine gauges, no database).
	floor           bool
	n, open, errors int
	ttfb, added     []time.Duration // sorted
	rss, heap       float64         // bytes per open stream
	goroutines      float64
	// CPU per stream that ran (errors left out) of the server (or the
	// floor), PostgreSQL, and this process (the clients and the fake
	// model).
	cpu, pgCPU, harnessCPU time.Duration
	wall                   time.Duration  // the level, first start to last end
	why                    map[string]int // the errors, by message
}

type holding struct {
	streamRow
	done chan struct{}
}

func (h *holding) wait() { <-h.done }

// holdStreams starts one stream per conversation, spread over half an
// answer's time (twice the rate at which a steady n streams would start,
// not one burst), and returns once all are past their first delta, the
// first ones still streaming (they keep running: wait for them). Its open
// is how many were open then.
func holdStreams(s streamer, convs, tokens []string, answer time.Duration) *holding {
	h := &holding{done: make(chan struct{})}
	var mu sync.Mutex
	var wg sync.WaitGroup
	opened := make(chan struct{}, len(convs))
	// live counts the streams open at the clients' end: the same count
	// for any server (the floor has no gauge of its own).
	var live atomic.Int64
	spread := answer / 2
	round := time.Now().UnixNano()
	for i := range convs {
		time.Sleep(spread / time.Duration(len(convs)))
		wg.Go(func() {
			id := fmt.Sprintf("bench-q-%d-%d", round, i)
			signal := sync.OnceFunc(func() { opened <- struct{}{} })
			in := false // past its first delta, and its end not read yet
			ttfb, added, err := s.stream(convs[i], tokens[i], id, func() {
				in = true
				live.Add(1)
				signal()
			})
			if in {
				live.Add(-1)
			}
			signal() // also when it failed before its first delta
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				h.errors++
				if h.why == nil {
					h.why = map[string]int{}
				}
				h.why[err.Error()]++
				return
			}
			h.ttfb = append(h.ttfb, ttfb)
			h.added = append(h.added, added)
		})
	}
	// All started and past their first delta: measure now, mid-answer.
	for range convs {
		<-opened
	}
	h.open = int(live.Load())
	go func() {
		wg.Wait()
		mu.Lock()
		slices.Sort(h.ttfb)
		slices.Sort(h.added)
		mu.Unlock()
		close(h.done)
	}()
	return h
}

// streamer is the clients' side of the streams.
type streamer struct {
	client *http.Client
	base   string
	model  *firstTokens
	// drain is the pause between two reads of an answer past its first
	// delta.
	drain time.Duration
}

// stream posts question id as SSE and reports the time to the response's
// first byte and how long after the fake's first token the first delta
// arrived; it signals once the first delta is in and reads to the end.
func (s streamer) stream(conv, token, id string, firstDelta func()) (ttfb, added time.Duration, err error) {
	body := fmt.Sprintf(`{"content":"How do I install the operator? (%s)"}`, id)
	req, err := http.NewRequest(http.MethodPost, s.base+"/v1/conversations/"+conv+"/messages", strings.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return 0, 0, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	rd := bufio.NewReader(resp.Body)
	if _, err := rd.Peek(1); err != nil {
		return 0, 0, err
	}
	ttfb = time.Since(start)
	for {
		// ReadSlice: no copy of each line (thousands of streams parse
		// on the machine that runs the server).
		line, err := rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a long line (sources): the rest follows
		}
		if err != nil {
			return 0, 0, fmt.Errorf("stream ended before a delta: %w", err)
		}
		if string(line) == "event: delta\n" {
			break
		}
	}
	first, ok := s.model.get(id)
	if !ok {
		return 0, 0, fmt.Errorf("the model never saw question %s", id)
	}
	added = time.Since(first)
	firstDelta()
	// The rest of the answer, to its end: the stream stays open meanwhile.
	// Nothing more is measured on it, so a read takes what arrived in the
	// last few tokens' time (the server's writes wait in the socket's
	// buffer, a few hundred bytes), not one read and one wake-up per
	// token: thousands of streams read on the machine that runs the
	// server.
	buf := make([]byte, rd.Size()) // as large as rd's: read straight into it
	for {
		time.Sleep(s.drain)
		if _, err := rd.Read(buf); errors.Is(err, io.EOF) {
			return ttfb, added, nil
		} else if err != nil {
			return 0, 0, fmt.Errorf("read the answer: %w", err)
		}
	}
}

// scrape reads the Go runtime's gauges from chat-apiserver's metrics.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if f, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = f
		}
	}
	return out
}

// reportStreams prints the levels' table, a level's rows side by side
// (the floor's first), then what each server sustained.
func reportStreams(rows []streamRow, answer time.Duration) {
	load, _ := os.ReadFile("/proc/loadavg")
	where := "the clients, the fake model, PostgreSQL and the server measured share the machine's cores"
	if *pin {
		where = "the server measured alone on core 0 (-pin), the clients, the fake model and PostgreSQL on the others"
	}
	fmt.Printf("\nbench-stream: fake model at %.0f tokens/s, %d tokens an answer (%s), load average %s; %s\n",
		*tokenRate, *answerTokens, answer, strings.Join(strings.Fields(string(load))[:3], " "), where)
	second := func(r streamRow) int { // the floor's row first
		if r.floor {
			return 0
		}
		return 1
	}
	rows = slices.SortedFunc(slices.Values(rows), func(a, b streamRow) int {
		return cmp.Or(cmp.Compare(a.n, b.n), cmp.Compare(second(a), second(b)))
	})
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "streams\tserver\topen\terrors\tTTFB p50\tTTFB p99\tadded p50\tadded p99\tRSS/stream\theap/stream\tgoroutines/stream\t"+
		"CPU/stream: process\tPostgreSQL\tclient+fake\tCPU/token\tCPU ÷ floor\tCPU+PostgreSQL ÷ floor\tone core's streams (projection)\t")
	floor := map[int]streamRow{}
	for _, r := range rows {
		projection := "–" // no stream ran: no CPU per stream to project from
		if r.errors < r.n {
			projection = fmt.Sprintf("%.0f", float64(answer)/float64(max(1, r.cpu)))
		}
		heap, goroutines, pgCPU, ratios := "–", "–", "–", [2]string{"", ""}
		if r.floor {
			floor[r.n] = r
		} else {
			heap, goroutines, pgCPU = fmt.Sprintf("%.0f KiB", r.heap/1024), fmt.Sprintf("%.1f", r.goroutines), ms(r.pgCPU)
			if f, ok := floor[r.n]; ok && f.errors < f.n && r.errors < r.n {
				ratios = [2]string{fmt.Sprintf("%.2fx", float64(r.cpu)/float64(max(1, f.cpu))),
					fmt.Sprintf("%.2fx", float64(r.cpu+r.pgCPU)/float64(max(1, f.cpu)))}
			}
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%.0f KiB\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.n, r.server, r.open, r.errors,
			ms(r.ttfbAt(.5)), ms(r.ttfbAt(.99)), ms(quantile(r.added, .5)), ms(quantile(r.added, .99)), r.rss/1024, heap, goroutines,
			ms(r.cpu), pgCPU, ms(r.harnessCPU), us(r.cpu/time.Duration(*answerTokens)), ratios[0], ratios[1], projection)
	}
	_ = w.Flush()
	for _, r := range rows {
		ran := float64(max(1, r.n-r.errors))
		cores := func(perStream time.Duration) float64 { return float64(perStream) * ran / float64(r.wall) }
		pg := fmt.Sprintf(", PostgreSQL %.2f", cores(r.pgCPU))
		if r.floor {
			pg = ""
		}
		fmt.Printf("  %d streams, %s, over %s: cores kept busy: %s %.2f%s, client+fake %.2f (machine: %d)\n",
			r.n, r.server, r.wall.Round(100*time.Millisecond), r.server, cores(r.cpu), pg, cores(r.harnessCPU), runtime.NumCPU())
		for why, n := range r.why {
			fmt.Printf("  %d streams, %s: %d x %s\n", r.n, r.server, n, why)
		}
	}
	fmt.Println("open: streams past their first delta and not yet ended, when the last one got its first delta (the clients' count)\n" +
		"CPU per stream: per stream that ran (errors left out); CPU/token: the process's CPU per stream over the tokens of an answer\n" +
		"the floor does not touch PostgreSQL (–); its ratios: chat-apiserver's CPU (with PostgreSQL's) over the floor's at the same level\n" +
		"one core's streams (projection, not measured): the answer's duration over the process's CPU per stream,\n" +
		"  the streams one core's worth of its CPU would keep going at once, with no latency target")
	reportSustained(rows)
}

// reportSustained prints the streams each server sustained, and
// chat-apiserver's over the floor's.
func reportSustained(rows []streamRow) {
	held := map[string]int{}
	var servers []string
	for _, name := range []string{"floor", "chat-apiserver"} {
		sustained, why := 0, " (every level tried: at least this)"
		for _, r := range rows { // sorted by level
			if r.server != name {
				continue
			}
			if w := r.unsustained(); w != "" {
				why = fmt.Sprintf(" (%d streams: %s)", r.n, w)
				break
			}
			sustained = r.n
		}
		if slices.ContainsFunc(rows, func(r streamRow) bool { return r.server == name }) {
			held[name] = sustained
			servers = append(servers, fmt.Sprintf("%s %d%s", name, sustained, why))
		}
	}
	fmt.Printf("streams sustained with TTFB p99 < 100 ms, all open at once, no errors, at this level and every lower one: %s\n",
		strings.Join(servers, "; "))
	if f, ok := held["floor"]; ok && f > 0 {
		// The levels are coarse: each limit lies between the level held
		// and the next one tried.
		bound := "of the levels tried: each limit lies between its level and the next"
		if f == rows[len(rows)-1].n {
			bound = "the floor held every level tried: its own limit is higher, the ratio at most this"
		}
		fmt.Printf("streams sustained, chat-apiserver ÷ floor: %.2fx (%s)\n", float64(held["chat-apiserver"])/float64(f), bound)
	}
}

// unsustained says why the row's level was not held ("" if it was): an
// error, a stream that ended before the last one started, or TTFB p99.
func (r streamRow) unsustained() string {
	switch {
	case r.errors > 0:
		return fmt.Sprintf("%d errors", r.errors)
	case r.open < r.n:
		return fmt.Sprintf("%d open at once", r.open)
	case r.ttfbAt(.99) >= 100*time.Millisecond:
		return "TTFB p99 " + ms(r.ttfbAt(.99))
	}
	return ""
}

func (r streamRow) ttfbAt(p float64) time.Duration { return quantile(r.ttfb, p) }

// quantile is the p quantile of sorted l.
func quantile(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[min(len(l)-1, int(p*float64(len(l))))]
}
