package generate

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
)

// Extractive answers without a language model: it finds the sentence of
// the retrieved passages that best answers the question, quotes it with
// the sentence (or code block) that completes it, and cites only the
// passages it quotes, under a label saying what it is.
type Extractive struct {
	// MaxSentences bounds the answer (default 3).
	MaxSentences int
}

// ExtractiveLabel opens every extractive answer, so nobody mistakes it for a
// model's.
const ExtractiveLabel = "_Quoted from the documentation, not written by a language model: these are its most relevant excerpts._"

// ExtractiveModel is the model stored with an extractive answer.
const ExtractiveModel = "extractive"

// AgentType implements Generator.
func (e Extractive) AgentType() string { return "rag-extractive" }

var sentenceEnd = regexp.MustCompile(`([.!?])\s+`)

// Markdown a passage keeps verbatim (chunks are the page's source) that a
// quote must not: a blockquote's markers (GitHub alerts' bodies), a list
// item's marker, and an image, which a reader sees as a picture, not as
// "![Argo CD Terminal](../assets/terminal.png)".
var (
	quoteMarker = regexp.MustCompile(`^(?:>\s?)+`)
	listMarker  = regexp.MustCompile(`^(?:[-*+]|\d{1,9}[.)])\s+`)
	image       = regexp.MustCompile(`!\[[^\]]*\]\([^)]*\)`)
)

// unit is a sentence or a fenced code block of a passage.
type unit struct {
	text string
	code bool
}

// Generate implements Generator.
func (e Extractive) Generate(ctx context.Context, req Request, onDelta func(string) error) (Result, error) {
	limit := e.MaxSentences
	if limit <= 0 {
		limit = 3
	}
	res := Result{Model: ExtractiveModel}
	var b strings.Builder
	b.WriteString(ExtractiveLabel + "\n\n")
	quotes := choose(req, limit)
	if len(quotes) == 0 {
		b.WriteString(NotCovered)
	}
	for _, q := range quotes {
		res.Cited = appendCited(res.Cited, q.passage)
		if q.code {
			fmt.Fprintf(&b, "%s\n\n", q.text)
			continue
		}
		fmt.Fprintf(&b, "> %s [%d]\n\n", q.text, q.passage+1)
	}
	res.Grounded = len(res.Cited) > 0
	text := strings.TrimSpace(b.String())
	// Stream by words like a model would, so clients see one behaviour.
	for _, w := range strings.SplitAfter(text, " ") {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := onDelta(w); err != nil {
			return res, err
		}
		res.Text += w
	}
	return res, nil
}

type quote struct {
	unit
	passage int
}

// scored is a sentence of a passage and how well it answers.
type scored struct {
	passage, unit int
	score         float64
}

// choose picks what to quote: the best-scoring sentence, found in the
// passage whose heading and text match best, with its neighbours when they
// complete it; then the best sentence of another passage if it matches
// nearly as well.
func choose(req Request, limit int) []quote {
	q := newQuery(req)
	units, cands := candidates(req, q)
	if len(cands) == 0 {
		return lead(req, units, q, limit)
	}
	first := cands[0]
	for _, c := range cands[1:] {
		if c.score > first.score {
			first = c
		}
	}
	out := withNeighbours(units[first.passage], first, q, limit)
	var second *scored
	for i, c := range cands {
		if c.passage != first.passage && c.score >= 0.8*first.score && (second == nil || c.score > second.score) {
			second = &cands[i]
		}
	}
	if second != nil && len(out) < limit {
		out = append(out, quote{unit: units[second.passage][second.unit], passage: second.passage})
	}
	return out
}

// lead quotes the opening of the best passage found for its meaning when no
// sentence shares a word with the question: the encoder judged it to answer
// in other words ("Access tokens expire after an hour" for "How long before
// a login credential stops working?"), which word overlap cannot score, and
// a section's first sentence says what it is about. Nil when no passage is
// Similar: then nothing is quoted, and the answer is NotCovered.
func lead(req Request, units [][]unit, q query, limit int) []quote {
	for pi, p := range req.Passages {
		if !p.Similar {
			continue
		}
		for ui, u := range units[pi] {
			if !u.code {
				return withNeighbours(units[pi], scored{passage: pi, unit: ui}, q, limit)
			}
		}
	}
	return nil
}

// candidates splits the passages into units and scores their sentences.
func candidates(req Request, q query) ([][]unit, []scored) {
	units := make([][]unit, len(req.Passages))
	var out []scored
	for pi, p := range req.Passages {
		units[pi] = splitUnits(p.Text)
		// The heading that matched lends its score to the sentences under it,
		// in full: a heading says what its section answers ("Comparing
		// snapshots"), while its sentences need not repeat it ("Run
		// `driftwood diff A B` ..."). At half its weight, a sentence of a
		// passage ranked lower that shares one other word of the question
		// ("two gibibytes" for "compare two backups") was quoted, and so
		// cited, first.
		headScore := q.overlap(p.Title)
		for ui, u := range units[pi] {
			// A sentence under a matching heading is a candidate even when
			// it does not repeat the heading's words ("No. It runs on Linux
			// only." under "Does it support Android?").
			s := q.overlap(u.text)
			if u.code || (s == 0 && headScore == 0) {
				continue
			}
			// Passages that ranked better in retrieval are favoured, in
			// proportion to their retrieval score.
			out = append(out, scored{passage: pi, unit: ui, score: (s + headScore) * rel(req.Passages, pi)})
		}
	}
	return units, out
}

// rel is how passage pi ranked in retrieval relative to the first: the
// ratio of their scores, or, when the scores are unknown, a discount by
// rank.
func rel(ps []Passage, pi int) float64 {
	if ps[0].Score > 0 && ps[pi].Score > 0 {
		return float64(ps[pi].Score / ps[0].Score)
	}
	return 1 / (1 + 0.25*float64(pi))
}

// withNeighbours quotes the best sentence with what completes it: the
// sentence before when it shares the question's words (it often holds the
// command the best one explains), and the units after while they do, or
// the one a trailing ":" announces (a code block, a list).
func withNeighbours(us []unit, best scored, q query, limit int) []quote {
	out := []quote{{unit: us[best.unit], passage: best.passage}}
	if i := best.unit - 1; i >= 0 && !us[i].code && q.overlap(us[i].text) > 0 {
		out = append([]quote{{unit: us[i], passage: best.passage}}, out...)
	}
	for i := best.unit + 1; i < len(us) && len(out) < limit; i++ {
		prev := out[len(out)-1].text
		if !strings.HasSuffix(prev, ":") && (us[i].code || q.overlap(us[i].text) == 0) {
			break
		}
		out = append(out, quote{unit: us[i], passage: best.passage})
		if us[i].code {
			break
		}
	}
	return out
}

// query is the question's words, each with its weight, and the weight
// below which a word is ubiquitous.
type query struct {
	words map[string]float64
	floor float64
}

// newQuery weighs the question's words. Unknown weights (a store that
// reports none) make every word informative. So do the weights of a
// question naming nothing but ubiquitous words ("Who is Acme for?": its
// only word is the product's name): it asks about the product itself, the
// relevance threshold found all its words in the passages, and retrieval
// ranked first the section whose heading names the product ("Who Acme is
// for"). Holding such a question to the floor answered it with "not
// covered" while citing nothing of the right section.
func newQuery(req Request) query {
	q := query{words: map[string]float64{}}
	informative := false
	for _, w := range embed.Words(req.Question) {
		q.words[w] = weight(req.Weights, w)
		informative = informative || q.words[w] >= minWordWeight
	}
	if req.Weights != nil && informative {
		q.floor = minWordWeight
	}
	return q
}

// overlap is the weight of the question's words that text contains; 0 when
// the only shared words are ubiquitous (weighted below q.floor), so a
// sentence that merely names the product is never quoted.
func (q query) overlap(text string) float64 {
	seen := map[string]bool{}
	var s float64
	informative := false
	for _, w := range embed.Words(text) {
		qw, ok := q.words[w]
		if !ok || seen[w] {
			continue
		}
		seen[w] = true
		s += qw
		informative = informative || qw >= q.floor
	}
	if !informative {
		return 0
	}
	return s
}

// minWordWeight is the IDF below which a word is ubiquitous: present in
// more than about half of the chunks.
const minWordWeight = 0.7

func weight(weights map[string]float64, w string) float64 {
	if weights == nil {
		return 1
	}
	return weights[w]
}

// appendCited adds passage to the cited list once, keeping first-citation
// order.
func appendCited(cited []int, passage int) []int {
	for _, c := range cited {
		if c == passage {
			return cited
		}
	}
	return append(cited, passage)
}

// splitUnits cuts a passage into sentences and whole fenced code blocks.
func splitUnits(text string) []unit {
	var out []unit
	var para, code []string
	var fence string
	flush := func() {
		t := strings.Join(para, " ")
		para = nil
		for _, s := range strings.Split(sentenceEnd.ReplaceAllString(t, "$1\x00"), "\x00") {
			if s = strings.Join(strings.Fields(s), " "); len(s) > 3 {
				out = append(out, unit{text: s})
			}
		}
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case fence != "":
			code = append(code, line)
			if strings.HasPrefix(trimmed, fence) {
				out = append(out, unit{text: strings.Join(code, "\n"), code: true})
				code, fence = nil, ""
			}
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			flush()
			fence = trimmed[:3]
			code = []string{line}
		default:
			trimmed = strings.TrimSpace(image.ReplaceAllString(quoteMarker.ReplaceAllString(trimmed, ""), ""))
			// A list item is a sentence of its own: joined to the line
			// before, "... marked as failed\n2. Apply ..." was quoted as
			// "... marked as failed 2.", its number cut off as the end of a
			// sentence.
			if item := listMarker.ReplaceAllString(trimmed, ""); item != trimmed {
				flush()
				trimmed = item
			}
			if trimmed == "" {
				flush()
				continue
			}
			para = append(para, trimmed)
		}
	}
	flush()
	if fence != "" {
		// A window cut the block: quote what it has, closed.
		out = append(out, unit{text: strings.Join(append(code, fence), "\n"), code: true})
	}
	return out
}
