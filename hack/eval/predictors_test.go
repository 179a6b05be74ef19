//go:build eval

package eval

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

// TestAbstentionPredictors is a one-off diagnostic, not part of make eval:
//
//	go test -tags eval -count=1 -run '^TestAbstentionPredictors$' -v ./hack/eval/
//
// It asks whether query performance prediction (QPP: the IR literature's
// unsupervised estimates of whether retrieval found anything relevant)
// tells unanswerable questions from answerable ones better than coverage,
// the relevance threshold's measure. For every question of questions.yaml
// and heldout.yaml (never heldout2.yaml: it is held out) it computes each
// predictor from the real store, offline (BM25F, no model), by the same
// code for all, and prints per set each predictor's ROC AUC: the chance
// that an answerable question scores higher than an unanswerable one (ties
// half), with its standard error (Hanley and McNeil 1982). Every predictor
// is oriented so that higher should mean answerable, as the literature has
// it; an AUC below 0.5 means the other way round separates.
//
// Then, for each predictor, the simple combination the product could use:
// abstain when the product abstains now (coverage, and the extractive
// answer) or the predictor is below t, t calibrated on questions.yaml
// alone (the orientation too, if its AUC there is below 0.5): t0 abstains
// on no answerable question of questions.yaml that is answered now, t5 on
// up to 5% of them (the ceiling). heldout.yaml shows whether it
// carries over. The column "answered: AUC" is the AUC among the questions
// answered now alone: what such a rule can still act on.
//
// The parameters are the literature's usual ones, fixed before any figure
// was seen: k = 5 (RAG_TOP_K) for WIG, k = 10 for NQC and clarity, clarity
// smoothed with 0.6 of the document's model.
func TestAbstentionPredictors(t *testing.T) {
	api, token, pool, store := diagnosticStore(t)
	ctx := context.Background()
	coll := loadCollection(t, pool)
	var calib map[string]cut
	for _, file := range []string{"questions.yaml", "heldout.yaml"} {
		var qs []scoredQuestion
		for _, q := range loadQuestions(t, file) {
			hits, err := store.Search(ctx, vectorstore.Query{Text: q.Q, Limit: len(coll.rows), Lexical: true})
			if err != nil {
				t.Fatal(err)
			}
			idf, err := store.Weights(ctx, q.Q)
			if err != nil {
				t.Fatal(err)
			}
			sq := scoredQuestion{
				q:          q,
				answerable: q.Kind != "unanswerable",
				grounded:   *ask(t, api, token, q.Q).Grounded,
				p:          coll.predictors(q.Q, hits, idf),
			}
			if sq.grounded {
				sq.p["grounded now (0/1)"] = 1
			}
			qs = append(qs, sq)
		}
		if calib == nil {
			calib = calibrate(qs)
		}
		report(t, file, qs, calib)
	}
}

// predictorNames, in the order printed; the first is the product's.
var predictorNames = []string{
	"coverage (top-5 max)", "grounded now (0/1)",
	"top score", "WIG k=5", "NQC k=10", "clarity k=10", "ratio 1st/2nd",
	"max IDF", "avg IDF", "SCS", "words in docs", "weighed words in docs", "words in one chunk",
}

type scoredQuestion struct {
	q          question
	answerable bool
	grounded   bool
	p          map[string]float64
}

// collection is the indexed chunks as bags of index terms (embed.Words of
// title, heading and text, unweighted): the language models clarity and
// SCS compare with.
type collection struct {
	rows  map[string]map[string]float64 // chunk id: term counts
	lens  map[string]float64
	cf    map[string]float64 // collection term counts
	total float64
}

func loadCollection(t *testing.T, pool *pgxpool.Pool) collection {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT id::text, title, heading, text FROM rag_chunks`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	c := collection{rows: map[string]map[string]float64{}, lens: map[string]float64{}, cf: map[string]float64{}}
	for rows.Next() {
		var id, title, heading, text string
		if err := rows.Scan(&id, &title, &heading, &text); err != nil {
			t.Fatal(err)
		}
		all := title + " " + text
		if heading != title {
			all += " " + heading
		}
		tf := map[string]float64{}
		for _, w := range embed.Words(all) {
			tf[w]++
			c.cf[w]++
			c.lens[id]++
			c.total++
		}
		c.rows[id] = tf
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// predictors computes every predictor of one question from its BM25F hits
// (every chunk sharing a word, best first) and its words' IDF.
func (c collection) predictors(question string, hits []vectorstore.Hit, idf map[string]float64) map[string]float64 {
	words := embed.Words(question)
	slices.Sort(words)
	words = slices.Compact(words)
	nq := float64(max(len(words), 1))
	scores := make([]float64, len(hits))
	for i, h := range hits {
		scores[i] = float64(h.Score)
	}
	top := func(k int) []float64 { return scores[:min(k, len(scores))] }
	// The collection's score: the mean over every chunk (those sharing no
	// word score 0), BM25F's stand-in for the query likelihood of the
	// collection that WIG and NQC subtract and divide by.
	var corpus float64
	for _, s := range scores {
		corpus += s
	}
	corpus /= float64(len(c.rows))
	p := map[string]float64{}

	var cov float64
	for _, h := range hits[:min(config.DefaultTopK, len(hits))] {
		cov = max(cov, float64(h.Coverage))
	}
	p["coverage (top-5 max)"] = cov
	if len(scores) > 0 {
		p["top score"] = scores[0]
	}
	p["WIG k=5"] = (mean(top(5)) - corpus) / math.Sqrt(nq)
	if corpus > 0 {
		p["NQC k=10"] = stddev(top(10)) / corpus
	}
	p["clarity k=10"] = c.clarity(hits[:min(10, len(hits))])
	switch {
	case len(scores) >= 2 && scores[1] > 0:
		p["ratio 1st/2nd"] = scores[0] / scores[1]
	case len(scores) >= 1:
		p["ratio 1st/2nd"] = math.Inf(1)
	}

	// Pre-retrieval.
	var maxIDF, sumIDF float64
	var inDocs, weighed, weighedIn float64
	for _, w := range words {
		maxIDF = max(maxIDF, idf[w])
		sumIDF += idf[w]
		found := c.cf[w] > 0
		if found {
			inDocs++
		}
		if found || !embed.Common(w) {
			weighed++
			if found {
				weighedIn++
			}
		}
	}
	p["max IDF"] = maxIDF
	p["avg IDF"] = sumIDF / nq
	p["words in docs"] = inDocs / nq
	if weighed > 0 {
		p["weighed words in docs"] = weighedIn / weighed
	}
	var inOne float64
	for _, tf := range c.rows {
		var n float64
		for _, w := range words {
			if tf[w] > 0 {
				n++
			}
		}
		inOne = max(inOne, n/nq)
	}
	p["words in one chunk"] = inOne
	// Simplified clarity score (He and Ounis 2004): the question's own
	// language model against the collection's; a word the docs lack gets
	// half a count, so that it weighs the most rather than infinitely.
	var scs float64
	for _, w := range words {
		pc := max(c.cf[w], 0.5) / c.total
		scs += 1 / nq * math.Log2(1/nq/pc)
	}
	p["SCS"] = scs
	return p
}

// clarity is Cronen-Townsend, Zhou and Croft's (2002) clarity score: the
// KL divergence of the top hits' language model (each chunk's, smoothed
// with the collection's, weighed by its share of the BM25F scores) from
// the collection's.
func (c collection) clarity(hits []vectorstore.Hit) float64 {
	const lambda = 0.6
	var sum float64
	for _, h := range hits {
		sum += float64(h.Score)
	}
	if sum <= 0 {
		return 0
	}
	var kl float64
	for w, cf := range c.cf {
		pc := cf / c.total
		var pq float64
		for _, h := range hits {
			pd := lambda*c.rows[h.ID][w]/c.lens[h.ID] + (1-lambda)*pc
			pq += float64(h.Score) / sum * pd
		}
		kl += pq * math.Log2(pq/pc)
	}
	return kl
}

// cut is a predictor's calibrated combination rule: abstain also when
// sign × the predictor is below t.
type cut struct {
	sign   float64
	t0, t5 float64
}

// calibrate sets each predictor's orientation and thresholds on the
// labelled set (qs): t0 is the lowest value an answerable question answered
// now has (abstaining below it costs none of them), t5 the value below
// which at most 5% of them fall.
func calibrate(qs []scoredQuestion) map[string]cut {
	out := map[string]cut{}
	for _, name := range predictorNames {
		c := cut{sign: 1}
		if a, _ := auc(qs, name, 1); a < 0.5 {
			c.sign = -1
		}
		var vals []float64
		var answerable int
		for _, q := range qs {
			if q.answerable {
				answerable++
				if q.grounded {
					vals = append(vals, c.sign*q.p[name])
				}
			}
		}
		sort.Float64s(vals)
		if len(vals) > 0 {
			c.t0 = vals[0]
			// Abstaining below vals[i] costs the i values below it.
			c.t5 = vals[min(int(0.05*float64(answerable)), len(vals)-1)]
		}
		out[name] = c
	}
	return out
}

func report(t *testing.T, file string, qs []scoredQuestion, calib map[string]cut) {
	t.Helper()
	var a, u int
	for _, q := range qs {
		if q.answerable {
			a++
		} else {
			u++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d answerable, %d unanswerable; orientation and thresholds from questions.yaml\n", file, a, u)
	var answered []scoredQuestion
	for _, q := range qs {
		if q.grounded {
			answered = append(answered, q)
		}
	}
	fmt.Fprintf(&b, "%-24s %12s %15s   %-34s %-34s\n", "predictor", "AUC (SE)", "answered: AUC", "now OR below t0: P / R / ans.abst.", "now OR below t5: P / R / ans.abst.")
	for _, name := range predictorNames {
		all, se := auc(qs, name, 1)
		among := "n/a"
		if a, _ := auc(answered, name, 1); hasBoth(answered) {
			among = fmt.Sprintf("%.3f", a)
		}
		c := calib[name]
		fmt.Fprintf(&b, "%-24s %5.3f (%.3f) %15s   %-34s %-34s\n", name, all, se, among,
			combined(qs, func(q scoredQuestion) bool { return c.sign*q.p[name] < c.t0 }),
			combined(qs, func(q scoredQuestion) bool { return c.sign*q.p[name] < c.t5 }))
	}
	fmt.Fprintf(&b, "%-24s %12s %15s   %-34s\n", "now (reference)", "", "", combined(qs, func(scoredQuestion) bool { return false }))
	t.Log("\n" + b.String())
	t.Logf("%s, per question, in the order above: %s", file, strings.Join(predictorNames, " | "))
	for _, q := range qs {
		var vals []string
		for _, name := range predictorNames {
			vals = append(vals, fmt.Sprintf("%.2f", q.p[name]))
		}
		kind := "answerable  "
		if !q.answerable {
			kind = "UNANSWERABLE"
		}
		t.Logf("%s %s %q", kind, strings.Join(vals, " "), q.q.Q)
	}
}

// hasBoth reports whether qs holds answerable and unanswerable questions.
func hasBoth(qs []scoredQuestion) bool {
	var a, u bool
	for _, q := range qs {
		a, u = a || q.answerable, u || !q.answerable
	}
	return a && u
}

// combined is the abstention of the rule "abstain when the product does
// now or also(q)": precision, recall, share of answerable ones abstained.
func combined(qs []scoredQuestion, also func(scoredQuestion) bool) string {
	var abstained, right, unanswerable, wrong, answerable int
	for _, q := range qs {
		abst := !q.grounded || also(q)
		if q.answerable {
			answerable++
			if abst {
				wrong++
			}
			continue
		}
		unanswerable++
		if abst {
			right++
		}
	}
	for _, q := range qs {
		if !q.grounded || also(q) {
			abstained++
		}
	}
	p := 1.0
	if abstained > 0 {
		p = float64(right) / float64(abstained)
	}
	return fmt.Sprintf("%.3f / %.3f / %.3f", p, float64(right)/float64(max(unanswerable, 1)), float64(wrong)/float64(max(answerable, 1)))
}

// auc is the ROC AUC of sign × predictor name for telling answerable
// questions (positive) from unanswerable ones, with its standard error
// (Hanley and McNeil 1982).
func auc(qs []scoredQuestion, name string, sign float64) (float64, float64) {
	var pairs, wins float64
	var n1, n2 float64
	for _, a := range qs {
		if !a.answerable {
			continue
		}
		n1++
		for _, u := range qs {
			if u.answerable {
				continue
			}
			pairs++
			switch x, y := sign*a.p[name], sign*u.p[name]; {
			case x > y:
				wins++
			case x == y:
				wins += 0.5
			}
		}
	}
	for _, u := range qs {
		if !u.answerable {
			n2++
		}
	}
	if pairs == 0 {
		return 0.5, 0
	}
	A := wins / pairs
	q1, q2 := A/(2-A), 2*A*A/(1+A)
	se := math.Sqrt((A*(1-A) + (n1-1)*(q1-A*A) + (n2-1)*(q2-A*A)) / (n1 * n2))
	return A, se
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func stddev(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	m := mean(xs)
	var s float64
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(xs)))
}
