package pgstore

import (
	"math"
	"slices"
	"sync"

	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

// BM25F parameters. Title and heading words count several times over body
// words: a section headed "Rotating signing keys" is about key rotation even
// when its body says "rotate" once. The title weighs less than the heading
// because every chunk of a page repeats it.
const (
	bm25K1        = 1.2
	bm25B         = 0.75
	titleWeight   = 2
	headingWeight = 3
)

// lexIndex is a BM25F inverted index over the loaded chunks, rebuilt with
// every snapshot: ingest maintains rag_chunks incrementally and each server
// rebuilds the index when the generation moves, so ranking needs no round
// trip to the database and no extension. IDF is what keeps a word present
// on every page (the product's name) from ranking anything.
type lexIndex struct {
	postings map[string][]posting
	// length is each row's weighted term count, avgLen their mean.
	length []float32
	avgLen float64
	// scratches holds spare *scratch of len(length) rows, all zero.
	scratches sync.Pool
}

type posting struct {
	row int32
	tf  float32
}

func buildLexIndex(payloads []vectorstore.Payload) *lexIndex {
	lx := &lexIndex{postings: map[string][]posting{}, length: make([]float32, len(payloads))}
	var total float64
	tf := map[string]float32{}
	stems := embed.NewStemmer()
	for row, p := range payloads {
		clear(tf)
		for _, w := range stems.Words(p.Title) {
			tf[w] += titleWeight
		}
		if p.Heading != p.Title {
			for _, w := range stems.Words(p.Heading) {
				tf[w] += headingWeight
			}
		}
		for _, w := range stems.Words(p.Text) {
			tf[w]++
		}
		var n float32
		for w, f := range tf {
			lx.postings[w] = append(lx.postings[w], posting{row: int32(row), tf: f})
			n += f
		}
		lx.length[row] = n
		total += float64(n)
	}
	if len(payloads) > 0 {
		lx.avgLen = total / float64(len(payloads))
	}
	return lx
}

// idf is the BM25 inverse document frequency of a term found in df of n
// rows; a term no row has gets the highest value.
func idf(n, df int) float64 {
	return math.Log(1 + (float64(n)-float64(df)+0.5)/(float64(df)+0.5))
}

// lexHit is one row's BM25F score and coverage: the share of the question's
// IDF weight the row contains, in [0, 1]. Unlike the score, coverage is
// comparable between questions, which makes it the relevance threshold.
type lexHit struct {
	row      int
	score    float32
	coverage float32
}

// followUpWeight is how much a word of the previous question counts in the
// ranking of a follow-up ("and on macOS?" after "How do I install it?"),
// relative to the follow-up's own words: enough to prefer the install page
// among the pages naming macOS, too little to outrank the follow-up's own
// subject.
const followUpWeight = 0.3

// queryTerm is one word a search looks for: the question's own (own) at
// weight 1, the previous question's at followUpWeight.
type queryTerm struct {
	word   string
	weight float64
	own    bool
}

// lexQuery is a question as the index scores it: its terms, and the IDF
// weight of its own words, which coverage divides by.
type lexQuery struct {
	terms    []queryTerm
	totalIDF float64
}

// query returns the words of question and, those it lacks, of previous
// (the conversation's previous question; "" for none).
func (lx *lexIndex) query(question, previous string) lexQuery {
	var q lexQuery
	own := uniqueWords(question)
	for _, w := range own {
		q.terms = append(q.terms, queryTerm{w, 1, true})
	}
	for _, w := range uniqueWords(previous) {
		if _, found := slices.BinarySearch(own, w); !found {
			q.terms = append(q.terms, queryTerm{w, followUpWeight, false})
		}
	}
	q.totalIDF = lx.weight(own)
	return q
}

// termScore is the BM25F score one term of weight termIDF contributes to the
// row of posting p.
func (lx *lexIndex) termScore(t queryTerm, termIDF float64, p posting) float64 {
	norm := bm25K1 * (1 - bm25B + bm25B*float64(lx.length[p.row])/lx.avgLen)
	return t.weight * termIDF * float64(p.tf) * (bm25K1 + 1) / (float64(p.tf) + norm)
}

// search returns the k rows with the best BM25F score for q, best first;
// rows sharing no term with it are not returned. The words of the
// conversation's previous question (see query) that the question lacks
// count at followUpWeight in the score, and not in the coverage: a row
// relevant only to the previous question is not relevant to this one.
func (lx *lexIndex) search(q lexQuery, k int) []lexHit {
	n := len(lx.length)
	if k <= 0 || n == 0 {
		return nil
	}
	// Dense accumulators: a common word's postings cover most rows, and a
	// slice indexed by row costs far less than a map per posting. They are
	// recycled with the list of rows touched: a fresh slice per question
	// cost page faults and zeroing in proportion to the index rather than
	// to the postings read (half the CPU of a question at 100k chunks); a
	// recycled one is cleared where it was touched.
	sc := lx.scratch()
	defer lx.recycle(sc)
	acc := sc.acc
	for _, t := range q.terms {
		ps := lx.postings[t.word]
		w := idf(n, len(ps))
		for _, p := range ps {
			s := lx.termScore(t, w, p)
			h := &acc[p.row]
			if h.score == 0 {
				sc.touched = append(sc.touched, p.row)
			}
			h.score += float32(s)
			if t.own {
				h.coverage += float32(w)
			}
		}
	}
	// The k best, kept sorted by insertion: k is a handful.
	better := func(a, b lexHit) bool { return a.score > b.score || (a.score == b.score && a.row < b.row) }
	out := make([]lexHit, 0, k+1)
	for _, row := range sc.touched {
		h := acc[row]
		h.row = int(row)
		if len(out) == k && !better(h, out[k-1]) {
			continue
		}
		if q.totalIDF > 0 {
			h.coverage = float32(float64(h.coverage) / q.totalIDF)
		}
		i, _ := slices.BinarySearchFunc(out, h, func(e, t lexHit) int {
			if better(e, t) {
				return -1
			}
			return 1
		})
		out = slices.Insert(out, i, h)
		if len(out) > k {
			out = out[:k]
		}
	}
	return out
}

// scratch is one search's working memory, recycled between searches:
// score accumulators, one per row (all zero between searches), and the
// rows a search touched, which it clears.
type scratch struct {
	acc     []lexHit
	touched []int32
}

// scratch returns a cleared scratch.
func (lx *lexIndex) scratch() *scratch {
	if sc, ok := lx.scratches.Get().(*scratch); ok {
		return sc
	}
	return &scratch{acc: make([]lexHit, len(lx.length))}
}

// recycle clears the touched rows of sc and keeps it for another search.
func (lx *lexIndex) recycle(sc *scratch) {
	for _, row := range sc.touched {
		sc.acc[row] = lexHit{}
	}
	sc.touched = sc.touched[:0]
	lx.scratches.Put(sc)
}

// hit is row's BM25F score and coverage for q, as search computes them,
// for a row the dense search found: the hybrid fusion needs both sides'
// scores of every candidate.
func (lx *lexIndex) hit(q lexQuery, row int) lexHit {
	h := lexHit{row: row}
	for _, t := range q.terms {
		ps := lx.postings[t.word]
		i, ok := slices.BinarySearchFunc(ps, int32(row), func(p posting, r int32) int { return int(p.row - r) }) //nolint:gosec // rows are far below 2^31
		if !ok {
			continue
		}
		w := idf(len(lx.length), len(ps))
		h.score += float32(lx.termScore(t, w, ps[i]))
		if t.own {
			h.coverage += float32(w)
		}
	}
	if q.totalIDF > 0 {
		h.coverage = float32(float64(h.coverage) / q.totalIDF)
	}
	return h
}

// weight is the IDF weight of a question's words (uniqueWords) that
// coverage divides by: that of the words that weigh.
func (lx *lexIndex) weight(words []string) float64 {
	var total float64
	for _, w := range words {
		if ps := lx.postings[w]; weighs(w, ps) {
			total += idf(len(lx.length), len(ps))
		}
	}
	return total
}

// weighs reports whether a question's word, found in the rows of ps,
// counts in coverage. A word no row has weighs the most (its IDF is the
// highest): a question about a subject the docs never name ("Solaris")
// keeps a low coverage and abstains. Not so a common English word the
// docs happen never to use ("different", "twice"): it says how
// the question is worded, not what it is about, and counting it made
// answerable questions abstain (coverage 0.21-0.28 with every other word
// found).
func weighs(word string, ps []posting) bool { return len(ps) > 0 || !embed.Common(word) }

func uniqueWords(text string) []string {
	ws := embed.Words(text)
	slices.Sort(ws)
	return slices.Compact(ws)
}
