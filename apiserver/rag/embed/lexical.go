package embed

import (
	"context"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"unicode"

	"github.com/kljensen/snowball/english"
)

// Lexical is the offline embedder: a hashed bag of words (stop words dropped,
// Snowball-stemmed, sub-linear term frequency) plus hashed word pairs. It knows
// nothing of meaning, but ranks passages sharing a question's rare words first,
// which is enough for a docs site to answer without any external service.
type Lexical struct{ dims int }

// LexicalDims is the vector size of the lexical embedder.
const LexicalDims = 1024

// NewLexical returns the offline embedder.
func NewLexical() *Lexical { return &Lexical{dims: LexicalDims} }

// Model implements Embedder.
func (l *Lexical) Model() string { return "offline-lexical-v4" }

// Embed implements Embedder.
func (l *Lexical) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, l.dims)
		for term, tf := range Terms(t) {
			v[Bucket(term, l.dims)] += float32(1 + math.Log(float64(tf)))
		}
		out[i] = Normalize(v)
	}
	return out, nil
}

// Terms counts the index terms of a text: stemmed words that are not stop
// words, and adjacent pairs of them (which rank "signing key" above pages
// that merely mention "signing" and "key" far apart).
func Terms(text string) map[string]int {
	words := Words(text)
	terms := make(map[string]int, 2*len(words))
	for i, w := range words {
		terms[w]++
		if i > 0 {
			terms[words[i-1]+" "+w]++
		}
	}
	return terms
}

// Words lower-cases, splits on non-alphanumerics, drops stop words (and the
// filler of questions: "need", "mean", "available", which the docs rarely
// say and which would otherwise count as missing from every page) and
// stems with the Snowball (Porter2) English stemmer: "rotation" and
// "rotated" are one term, and so are "backing" and "back"; the past forms
// of irregular verbs ("took") are their base first (see irregular). A hand-written
// suffix list did the stemming before; Porter2 matched more questions of
// both eval sets to their page (make eval).
func Words(text string) []string { return words(text, stem) }

func stem(word string) string { return english.Stem(word, false) }

func words(text string, stem func(string) string) []string {
	fields := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	out := fields[:0]
	for _, f := range fields {
		if base, ok := irregular[f]; ok {
			f = base
		}
		if len(f) < 2 || stopWords[f] {
			continue
		}
		out = append(out, stem(f))
	}
	return out
}

// Stemmer is Words for indexing many texts: it stems each distinct word
// once and remembers it. Stemming every occurrence was most of the CPU of
// loading an index (make bench-retrieval), since a docs site repeats a few
// thousand words millions of times. Not safe for concurrent use, and it
// grows with the distinct words it sees: one per index build, not one for
// the life of the server.
type Stemmer struct {
	stems map[string]string
}

// NewStemmer returns an empty Stemmer.
func NewStemmer() *Stemmer { return &Stemmer{stems: map[string]string{}} }

// Words is Words(text).
func (s *Stemmer) Words(text string) []string {
	return words(text, func(w string) string {
		st, ok := s.stems[w]
		if !ok {
			st = stem(w)
			s.stems[w] = st
		}
		return st
	})
}

// Bucket hashes a term into [0, dims). dims is a vector length: positive and
// far below 2^31.
func Bucket(term string, dims int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(term))
	return int(h.Sum32() % uint32(dims)) //nolint:gosec // dims is a vector length in (0, 2^31), so both conversions keep the value

}

// Hash32 is the term's hash, used as a sparse-vector index.
func Hash32(term string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(term))
	return h.Sum32()
}

var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be but by can do does for from has have how i if in
		into is it its me my no not of on or our so that the their them then there these they this to
		up us was we what when where which who why will with you your yours about after all also any
		been before being both each few more most other over same should some such than too very just
		should would could did doing am were he she her him his i'm it's don't
		need needs much many happen happens mean means available want way possible able please tell know
		still there's anything something`) {
		m[w] = true
	}
	return m
}()

// Normalize scales v to unit length in place (a zero vector stays zero).
func Normalize(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return v
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
	return v
}

// Sparse is the text's sparse term vector (hashed term → sub-linear term
// frequency) for hybrid search; the vector store weighs it by IDF.
func Sparse(text string) (indices []uint32, values []float32) {
	merged := map[uint32]float32{}
	for term, tf := range Terms(text) {
		merged[Hash32(term)] += float32(1 + math.Log(float64(tf)))
	}
	indices = make([]uint32, 0, len(merged))
	for i := range merged {
		indices = append(indices, i)
	}
	slices.Sort(indices)
	values = make([]float32, len(indices))
	for k, i := range indices {
		values[k] = merged[i]
	}
	return indices, values
}
