package embed

import (
	"slices"
	"testing"
)

// A Stemmer's words are Words', the second time a word comes as the first.
func TestStemmerIsWords(t *testing.T) {
	s := NewStemmer()
	for _, text := range []string{"Rotating the signing keys", "rotated keys, rotation of the KEY", "Rotating the signing keys"} {
		if got, want := s.Words(text), Words(text); !slices.Equal(got, want) {
			t.Errorf("Stemmer.Words(%q) = %q, Words gives %q", text, got, want)
		}
	}
	if len(s.stems) != 6 { // rotating signing keys rotated rotation key
		t.Errorf("remembered %d stems: %v", len(s.stems), s.stems)
	}
}

// The past form of an irregular verb is the verb's word ("took" matches
// "takes"), and a past form spelling another verb is not that verb
// ("found", of "find", is not "founded").
func TestWordsOfIrregularVerbs(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"took", "takes", true},
		{"ran", "running", true},
		{"written", "writes", true},
		{"found", "founded", false},
	} {
		if a, b := Words(c.a), Words(c.b); slices.Equal(a, b) != c.same {
			t.Errorf("Words(%q) = %q, Words(%q) = %q: want the same %v", c.a, a, c.b, b, c.same)
		}
	}
}
