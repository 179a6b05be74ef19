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
