package embed

import (
	_ "embed" // the common English words
	"strings"
	"sync"
	"unicode"
)

// commonEnglish is a comprehensive English stop-word list (stopwords-iso's,
// 1,298 words: "different", "twice", "behind", "today"), far longer than
// stopWords.
//
//go:embed common_english.txt
var commonEnglish string

// Common reports whether term (an index term, as Words returns it) is a
// common English word: one any text may use whatever its subject. Such a
// word, when the docs never use it, says nothing about whether they cover
// a question ("Are files on different machines stored twice?"), whereas
// a name they never use does ("Does Driftwood support Solaris?"). Dropping
// the list from every text instead, as stop words, cost the ranking (make
// eval: labelled hit@1 0.939 -> 0.878): the docs do use many of its words
// ("two", "show", "go").
func Common(term string) bool { return commonTerms()[term] }

var commonTerms = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(commonEnglish, "\n") {
		// Comments, and contractions whose parts are no words.
		if line == "" || strings.IndexFunc(line, func(r rune) bool { return !unicode.IsLetter(r) }) >= 0 {
			continue
		}
		for _, t := range Words(line) {
			m[t] = true
		}
	}
	return m
})
