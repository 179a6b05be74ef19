package generate

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
)

// Extractive answers without a language model: it quotes the sentences of
// the retrieved passages that share the most words with the question, each
// with its citation, under a label saying what it is.
type Extractive struct {
	// MaxSentences bounds the answer (default 3).
	MaxSentences int
}

// ExtractiveLabel opens every extractive answer, so nobody mistakes it for a
// model's.
const ExtractiveLabel = "_Offline answer: no language model is configured, so these are the most relevant excerpts of the documentation._"

// AgentType implements Generator.
func (e Extractive) AgentType() string { return "rag-extractive" }

var sentenceEnd = regexp.MustCompile(`([.!?])\s+|\n\s*\n`)

type candidate struct {
	text    string
	passage int
	score   float64
	order   int
}

// Generate implements Generator.
func (e Extractive) Generate(ctx context.Context, req Request, onDelta func(string) error) (Result, error) {
	limit := e.MaxSentences
	if limit <= 0 {
		limit = 3
	}
	qwords := map[string]bool{}
	for _, w := range embed.Words(req.Question) {
		qwords[w] = true
	}
	var cands []candidate
	for pi, p := range req.Passages {
		for _, s := range splitSentences(p.Text) {
			seen := map[string]bool{}
			hits := 0
			for _, w := range embed.Words(s) {
				if qwords[w] && !seen[w] {
					seen[w] = true
					hits++
				}
			}
			if hits == 0 {
				continue
			}
			// Earlier passages ranked better in retrieval; favour them.
			score := float64(hits) / (1 + 0.25*float64(pi))
			cands = append(cands, candidate{text: s, passage: pi, score: score, order: len(cands)})
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	cands = cands[:min(limit, len(cands))]
	// Quote in document order: passage rank, then position in the passage.
	slices.SortFunc(cands, func(a, b candidate) int { return a.order - b.order })

	var b strings.Builder
	b.WriteString(ExtractiveLabel + "\n\n")
	if len(cands) == 0 {
		b.WriteString("The documentation does not seem to cover this question.")
	}
	for _, c := range cands {
		fmt.Fprintf(&b, "> %s [%d]\n\n", c.text, c.passage+1)
	}
	text := strings.TrimSpace(b.String())
	res := Result{Model: "offline-extractive"}
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

func splitSentences(text string) []string {
	text = sentenceEnd.ReplaceAllString(text, "$1\x00")
	var out []string
	for _, s := range strings.Split(text, "\x00") {
		s = strings.Join(strings.Fields(s), " ")
		if len(s) > 3 && !strings.HasPrefix(s, "```") {
			out = append(out, s)
		}
	}
	return out
}
