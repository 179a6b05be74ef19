// Package generate writes the answer to a question from retrieved passages:
// with an OpenAI-compatible chat model (streamed), or, with no model
// configured, an extractive answer assembled from the passages and labelled
// as such.
package generate

import (
	"context"
	"unicode/utf8"
)

// Turn is one earlier message of the conversation.
type Turn struct {
	Role    string // "user" or "assistant"
	Content string
}

// Passage is one retrieved source, cited as [N] (N is its 1-based index).
type Passage struct {
	Title string
	URL   string
	Text  string
	// Score is the passage's retrieval score (higher is better; 0 when
	// unknown), comparable between the passages of one question only.
	Score float32
	// Similar: the passage was found relevant for its meaning (the
	// embeddings' similarity threshold), so it may share no word with the
	// question.
	Similar bool
}

// Request is one question.
type Request struct {
	Question string
	// History is the conversation so far, oldest first; the generator keeps
	// the most recent turns that fit its token budget.
	History  []Turn
	Passages []Passage
	// Weights is each question word's IDF in the docs (embed.Words form),
	// when the store measures it: the extractive answer never quotes a
	// sentence whose only shared word is a ubiquitous one. Nil weighs every
	// word alike.
	Weights map[string]float64
	// Waiting, when set, is called whenever a streaming generator is
	// about to wait for more of the model's answer: the pieces given to
	// onDelta so far may then be sent together (chat.Flusher), where a
	// send per piece would cost a syscall each when several came in one
	// read. Generators that do not wait (extractive) never call it.
	Waiting func()
}

// NotCovered is the answer's sentence when the documentation does not
// answer the question; the model is told to use it, which lets the answer
// be marked as not grounded.
const NotCovered = "The documentation does not cover this question."

// Usage is the token count the model reported.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
}

// Result is the answer. On error it holds what was generated before the
// failure, so that the caller can keep it as an incomplete answer.
type Result struct {
	Text  string
	Model string
	Usage Usage
	// Cited are the indexes (0-based) of the passages the answer cites, in
	// the order of their first citation.
	Cited []int
	// Grounded: the answer draws on the documentation (it cites a passage
	// and does not say the documentation does not cover the question).
	Grounded bool
}

// Generator answers questions, calling onDelta with each piece of text as it
// is produced; an error from onDelta stops generation and is returned.
type Generator interface {
	Generate(ctx context.Context, req Request, onDelta func(string) error) (Result, error)
	// AgentType is stored with each answer ("rag" or "rag-extractive").
	AgentType() string
}

// EstimateTokens approximates a text's token count (about four characters
// per token for English with the OpenAI tokenizers); it only needs to be
// good enough to bound the prompt.
func EstimateTokens(s string) int {
	return (utf8.RuneCountInString(s) + 3) / 4
}

// RecentHistory keeps the most recent turns whose estimated tokens fit in
// budget, oldest first.
func RecentHistory(turns []Turn, budget int) []Turn {
	used, i := 0, len(turns)
	for i > 0 {
		t := EstimateTokens(turns[i-1].Content) + 4 // per-message overhead
		if used+t > budget {
			break
		}
		used += t
		i--
	}
	return turns[i:]
}
