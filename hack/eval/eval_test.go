//go:build eval

// Package eval measures the answers of the PostgreSQL store with
// extractive answers (no chat model) on a labelled set that ships with the
// project: the docs of a fictional product in docs/ and the questions in
// questions.yaml. It runs the real thing: `chat-apiserver migrate`, `ingest`
// and `serve` in process, a real PostgreSQL (internal/pgtest) and a real
// BetterAuth token, and asks every question through POST /agents/run; twice,
// offline (BM25F alone) and hybrid (BM25F fused with the dense ranking of a
// real sentence encoder, hack/embedserver via internal/embedtest).
//
//	make eval
//
// For each mode and set of questions (questions.yaml, the labelled set the ranking
// is tuned on; heldout.yaml, written before that tuning but examined since
// 2026-12-02 to diagnose failures; and heldout2.yaml, the held-out set
// nobody has tuned on or diagnosed with) it prints hit@1, hit@3 and MRR of
// the cited pages on answerable questions, abstention precision and
// recall, how many answerable questions abstained, and how often the answer
// holds the expected fact, and fails below the thresholds at the top of
// this file. Two diagnostics make eval does not run: TestLexicalCeiling
// (ceiling_test.go) tells which of its hit@1 misses a lexical ranking could
// fix, and TestAbstentionPredictors (predictors_test.go) how well query
// performance predictors tell unanswerable questions apart, beside coverage.
// TestCorpus (corpus_test.go, make eval-corpus) measures the same on a real
// project's docs.
package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/chatbackend/chatbackend/apiserver/cli"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/internal/betterauthtest"
	"github.com/chatbackend/chatbackend/internal/embedtest"
	"github.com/chatbackend/chatbackend/internal/pgtest"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

// Two kinds of thresholds per set and mode. The floor fails make eval: it
// is what the set reached (raise it as ranking improves, never lower it to
// make a change pass). The targets are the (#13): the right page
// first for 90% of answerable questions and within the top 3 for 97%, 90%
// of unanswerable questions abstained, at most 5% of answerable ones; a
// measure below its target is printed as such. The held-out sets are far
// below them: lexical retrieval has no notion of synonyms ("directory" for
// "folder", "most recent" for "latest"), which the labelled set's wording
// hid; the hybrid mode is there to measure how much meaning (a sentence
// encoder's) brings.
var (
	targets = thresholds{Hit1: 0.90, Hit3: 0.97, MRR: 0.90, AbstainP: 0.90, AbstainR: 0.90, MaxWrongAbstain: 0.05, Fact: 0.80}
	// The hybrid floors are its run with RAG_MIN_SIMILARITY (minSimilarity)
	// and the convex fusion of normalised scores at its default dense
	// weight (pgstore.DefaultDenseWeight, 2026-12-02), which replaced RRF
	// and raised hit@1 on every set and every held-out figure but
	// abstention recall (README, Answer quality).
	sets = []set{
		{file: "questions.yaml", floors: map[string]thresholds{
			offline: {Hit1: 0.93, Hit3: 0.93, MRR: 0.93, AbstainP: 1, AbstainR: 1, MaxWrongAbstain: 0, Fact: 0.85},
			hybrid:  {Hit1: 0.93, Hit3: 0.93, MRR: 0.93, AbstainP: 1, AbstainR: 1, MaxWrongAbstain: 0, Fact: 0.89},
		}},
		// Written before the ranking was tuned on questions.yaml's misses;
		// a development set since its misses were examined (2026-12-02).
		{file: "heldout.yaml", floors: map[string]thresholds{
			offline: {Hit1: 0.86, Hit3: 0.86, MRR: 0.86, AbstainP: 0.87, AbstainR: 0.70, MaxWrongAbstain: 0.03, Fact: 0.77},
			hybrid:  {Hit1: 0.86, Hit3: 0.91, MRR: 0.88, AbstainP: 1, AbstainR: 0.70, MaxWrongAbstain: 0, Fact: 0.80},
		}},
		// Written on 2026-12-02 from the docs alone, once heldout.yaml had
		// been examined to diagnose failures: the set that is held out now.
		// Floors from its run after that day's changes to coverage and the
		// extractive answer (see README: abstention recall fell 0.30 -> 0.20).
		// Its misses are not printed: nobody tunes on them.
		{file: "heldout2.yaml", heldOut: true, floors: map[string]thresholds{
			offline: {Hit1: 0.71, Hit3: 0.71, MRR: 0.71, AbstainP: 0.20, AbstainR: 0.20, MaxWrongAbstain: 0.23, Fact: 0.60},
			hybrid:  {Hit1: 0.77, Hit3: 0.77, MRR: 0.77, AbstainP: 0.28, AbstainR: 0.20, MaxWrongAbstain: 0.15, Fact: 0.68},
		}},
	}
)

// The modes every set is measured in. Both answer extractively (no chat
// model) from the PostgreSQL store; offline ranks by BM25F alone, hybrid
// fuses BM25F with the dense ranking of a real sentence encoder
// (hack/embedserver, reached as an OpenAI-compatible API with
// RAG_ANSWERS=extractive).
const (
	offline = "offline"
	hybrid  = "hybrid"
)

// minSimilarity is the hybrid mode's RAG_MIN_SIMILARITY for this encoder,
// calibrated on questions.yaml alone (2026-12-02): the most similar passage
// any of its unanswerable questions found had a cosine of 0.637, so 0.65
// answers none of them, while answerable questions whose passage holds too
// little of their term weight (a paraphrase) are answered from meaning.
// heldout.yaml checked it (flat from 0.64 to 0.70); heldout2.yaml was
// measured once with it.
const minSimilarity = "0.65"

type set struct {
	file string
	// heldOut: its misses are not printed, only its figures.
	heldOut bool
	floors  map[string]thresholds
}

const site = "https://docs.driftwood.example"

// corpus is a docs tree and where its pages are published: a question's
// page is a path under routeBase.
type corpus struct {
	docs, site, routeBase string
	// reingest: ingest a second time, unchanged, and print how long it took.
	reingest bool
}

// driftwood is the fictional product's docs that ship with the project.
var driftwood = corpus{docs: "docs", site: site, routeBase: "/docs"}

// pageURL is the public URL of page (no trailing slash).
func (c corpus) pageURL(page string) string {
	return strings.TrimSuffix(strings.TrimSuffix(c.site, "/")+path.Join("/", c.routeBase, page), "/")
}

// onPage reports whether url (a section's, with its #anchor) is on page.
func (c corpus) onPage(url, page string) bool {
	return strings.TrimSuffix(strings.SplitN(url, "#", 2)[0], "/") == c.pageURL(page)
}

// thresholds are the minimum of each measure (MaxWrongAbstain: the maximum
// share of answerable questions that abstained).
type thresholds struct {
	Hit1, Hit3, MRR, AbstainP, AbstainR, MaxWrongAbstain, Fact float64
}

type question struct {
	Q    string `yaml:"q"`
	Page string `yaml:"page"`
	Fact string `yaml:"fact"`
	Kind string `yaml:"kind"`
}

type answer struct {
	Answer  string `json:"answer"`
	Sources []struct {
		URL string `json:"url"`
	} `json:"sources"`
	Grounded *bool `json:"grounded"`
}

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestEval(t *testing.T) {
	for _, mode := range []string{offline, hybrid} {
		t.Run(mode, func(t *testing.T) {
			api, token := serve(t, mode, driftwood)
			for _, set := range sets {
				t.Run(set.file, func(t *testing.T) { evalSet(t, api, token, driftwood, set, set.floors[mode]) })
			}
		})
	}
}

func evalSet(t *testing.T, api, token string, c corpus, set set, floors thresholds) {
	m := measure(t, api, token, c, loadQuestions(t, set.file))
	if !set.heldOut {
		for _, miss := range m.misses {
			t.Log(miss)
		}
	}
	t.Logf("%d questions (%d answerable, %d unanswerable); %d abstained", m.questions, m.answerable, m.unanswerable, m.abstained)
	floor, target := m.report(floors), m.report(targets)
	for i, g := range floor {
		note := ""
		if target[i].failed() {
			note = "  BELOW TARGET"
		}
		t.Logf("%-22s %.3f  (floor %s %.2f, target %s %.2f)%s", g.name, g.val, g.op, g.limit, g.op, target[i].limit, note)
	}
	for _, g := range floor {
		if g.failed() {
			t.Errorf("%s: %s %.3f is not %s its floor %.2f", set.file, g.name, g.val, g.op, g.limit)
		}
	}
}

// measures are the counts of one set's answers.
type measures struct {
	questions, answerable, unanswerable, abstained int
	hit1, hit3, fact, abstainedRight, wrongAbstain int
	mrr                                            float64
	misses                                         []string
}

func measure(t *testing.T, api, token string, c corpus, qs []question) measures {
	t.Helper()
	m := measures{questions: len(qs)}
	for _, q := range qs {
		a := ask(t, api, token, q.Q)
		if a.Grounded == nil {
			t.Fatalf("%q: the response has no grounded field", q.Q)
		}
		if !*a.Grounded {
			m.abstained++
		}
		if q.Kind == "unanswerable" {
			m.unanswerable++
			if !*a.Grounded {
				m.abstainedRight++
			} else {
				m.misses = append(m.misses, fmt.Sprintf("answered unanswerable %q with %s", q.Q, urls(c, a)))
			}
			continue
		}
		m.answerable++
		if !*a.Grounded {
			m.wrongAbstain++
		}
		want := c.pageURL(q.Page)
		rank := a.rank(c, q.Page)
		if rank == 1 {
			m.hit1++
		}
		if rank >= 1 && rank <= 3 {
			m.hit3++
		}
		if rank > 0 {
			m.mrr += 1 / float64(rank)
		}
		hasFact := strings.Contains(strings.ToLower(a.Answer), strings.ToLower(q.Fact))
		if hasFact {
			m.fact++
		}
		if rank != 1 || !hasFact {
			m.misses = append(m.misses, fmt.Sprintf("[%s] %q: want %s, rank %d, fact %v; got %s: %q", q.Kind, q.Q, want, rank, hasFact, urls(c, a),
				strings.TrimSpace(strings.TrimPrefix(a.Answer, generate.ExtractiveLabel))))
		}
	}
	return m
}

// rank is the position (from 1) of page's first source in a, 0 if none.
func (a answer) rank(c corpus, page string) int {
	for i, s := range a.Sources {
		if c.onPage(s.URL, page) {
			return i + 1
		}
	}
	return 0
}

type gauge struct {
	name, op   string
	val, limit float64
}

func (g gauge) failed() bool {
	if g.op == "<=" {
		return g.val > g.limit
	}
	return g.val < g.limit
}

func (m measures) report(limit thresholds) []gauge {
	ratio := func(a, b int) float64 {
		if b == 0 {
			return 1
		}
		return float64(a) / float64(b)
	}
	wrong := 0.0
	if m.answerable > 0 {
		wrong = float64(m.wrongAbstain) / float64(m.answerable)
	}
	return []gauge{
		{"hit@1", ">=", ratio(m.hit1, m.answerable), limit.Hit1},
		{"hit@3", ">=", ratio(m.hit3, m.answerable), limit.Hit3},
		{"MRR", ">=", m.mrr / float64(max(m.answerable, 1)), limit.MRR},
		{"abstention precision", ">=", ratio(m.abstainedRight, m.abstained), limit.AbstainP},
		{"abstention recall", ">=", ratio(m.abstainedRight, m.unanswerable), limit.AbstainR},
		{"answerable abstained", "<=", wrong, limit.MaxWrongAbstain},
		{"answer contains fact", ">=", ratio(m.fact, m.answerable), limit.Fact},
	}
}

func urls(c corpus, a answer) string {
	var u []string
	for _, s := range a.Sources {
		u = append(u, strings.TrimPrefix(s.URL, strings.TrimSuffix(c.site, "/")))
	}
	return "[" + strings.Join(u, " ") + "]"
}

func loadQuestions(t *testing.T, file string) []question {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var qs []question
	if err := yaml.Unmarshal(b, &qs); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return qs
}

// serve migrates a fresh database, ingests c's docs and starts serve in
// process, in mode (offline or hybrid); it returns the API's address and a
// user's token.
func serve(t *testing.T, mode string, c corpus) (api, token string) {
	t.Helper()
	db := pgtest.New(t)
	for _, k := range envvar.All {
		t.Setenv(k, "")
	}
	if mode == hybrid {
		enc := embedtest.Start(t)
		// Any key: the local encoder asks for none, but the key is what
		// turns the OpenAI-compatible embedder on.
		t.Setenv(envvar.OpenAIAPIKey, "local")
		t.Setenv(envvar.OpenAIBaseURL, enc.BaseURL)
		t.Setenv(envvar.OpenAIEmbeddingModel, embedtest.Model)
		t.Setenv(envvar.RAGAnswers, "extractive")
		t.Setenv(envvar.RAGMinSimilarity, minSimilarity)
	}
	ba := betterauthtest.Start(t)
	api = testutil.FreeAddr(t)
	t.Setenv(envvar.DatabaseURL, db)
	t.Setenv(envvar.BetterAuthURL, ba.URL)
	t.Setenv(envvar.ListenAddr, api)
	t.Setenv(envvar.MetricsAddr, testutil.FreeAddr(t))
	// One user asks every question in a row.
	t.Setenv(envvar.ChatRatePerMinute, "100000")
	t.Setenv(envvar.ChatRateBurst, "100000")
	var out bytes.Buffer
	if code := cli.Main([]string{"migrate"}, io.Discard, &out); code != 0 {
		t.Fatalf("migrate: %s", out.String())
	}
	ingest := []string{"ingest", "--docs", c.docs, "--site-url", c.site, "--route-base", c.routeBase}
	start := time.Now()
	if code := cli.Main(ingest, &out, &out); code != 0 {
		t.Fatalf("ingest: %s", out.String())
	}
	t.Logf("%s\ningest took %s", strings.TrimSpace(out.String()), time.Since(start).Round(time.Millisecond))
	if c.reingest {
		out.Reset()
		start = time.Now()
		if code := cli.Main(ingest, &out, &out); code != 0 {
			t.Fatalf("second ingest: %s", out.String())
		}
		t.Logf("second ingest, nothing changed:\n%s\nsecond ingest took %s", strings.TrimSpace(out.String()), time.Since(start).Round(time.Millisecond))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	root := cli.NewRoot()
	root.SetArgs([]string{"serve"})
	root.SetErr(io.Discard)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + api + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("serve not ready within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ba.SignUp(t, "eval@example.com", "Eval", "eval-password-1")
	return api, ba.Token(t, "eval@example.com", "eval-password-1")
}

func ask(t *testing.T, api, token, q string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"question": q})
	req, err := http.NewRequest(http.MethodPost, "http://"+api+"/agents/run", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%q: %v", q, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%q: %s %s", q, res.Status, b)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%q: %v", q, err)
	}
	return a
}
