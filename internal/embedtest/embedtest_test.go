package embedtest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/internal/embedtest"
)

func embedder(t testing.TB, s *embedtest.Server) *embed.OpenAI {
	t.Helper()
	e, err := embed.NewOpenAI(embed.OpenAIOptions{APIKey: "local", BaseURL: s.BaseURL, Model: embedtest.Model,
		HTTPClient: &http.Client{Timeout: timeout}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// timeout bounds every request to the encoder.
const timeout = 30 * time.Second

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// The product's own OpenAI embedder gets vectors that carry meaning: a
// paraphrase with no word in common is nearer than an unrelated sentence
// sharing words. That is what a fake could not do, and what hybrid
// retrieval is for.
func TestEmbeddingsCarryMeaning(t *testing.T) {
	s := embedtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	vecs, err := embedder(t, s).Embed(ctx, []string{
		"How do I change the folder where files are kept?",
		"Set the storage directory with the data-dir option.",
		"How do I change the colour of the chat widget?",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 3 || len(vecs[0]) != embedtest.Dimensions {
		t.Fatalf("got %d vectors of %d dimensions, want 3 of %d", len(vecs), len(vecs[0]), embedtest.Dimensions)
	}
	para, other := dot(vecs[0], vecs[1]), dot(vecs[0], vecs[2])
	if para <= other {
		t.Errorf("cosine with the paraphrase %.3f is not above that with the unrelated question %.3f", para, other)
	}
}

// Asked for base64 (as chat-apiserver's embedder asks), the encoder sends
// each vector as its float32s' little-endian bytes in base64: the very
// floats it sends as JSON for the same input.
func TestBase64IsTheFloats(t *testing.T) {
	s := embedtest.Start(t)
	client := &http.Client{Timeout: timeout}
	input := []string{"Where does Driftwood keep its files?", "Rotate the signing keys."}
	embeddings := func(format string) []json.RawMessage {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"input": input, "encoding_format": format})
		res, err := client.Post(s.BaseURL+"/embeddings", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			Data []struct {
				Index     int             `json:"index"`
				Embedding json.RawMessage `json:"embedding"`
			} `json:"data"`
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d, %v", format, res.StatusCode, err)
		}
		vs := make([]json.RawMessage, len(out.Data))
		for i, d := range out.Data {
			if d.Index != i {
				t.Fatalf("%s: vector %d has index %d", format, i, d.Index)
			}
			vs[i] = d.Embedding
		}
		return vs
	}
	floats, encoded := embeddings("float"), embeddings("base64")
	if len(floats) != len(input) || len(encoded) != len(input) {
		t.Fatalf("%d float and %d base64 vectors for %d inputs", len(floats), len(encoded), len(input))
	}
	for i := range input {
		var want []float32
		var text string
		if err := json.Unmarshal(floats[i], &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(encoded[i], &text); err != nil {
			t.Fatalf("base64 vector %d is not a string: %v", i, err)
		}
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil || len(b) != 4*embedtest.Dimensions {
			t.Fatalf("base64 vector %d: %d bytes (%v), want %d", i, len(b), err, 4*embedtest.Dimensions)
		}
		got := make([]float32, len(b)/4)
		for j := range got {
			got[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
		}
		if !slices.Equal(got, want) {
			t.Errorf("vector %d: base64 %v... differs from floats %v...", i, got[:4], want[:4])
		}
	}
}

func TestBadRequests(t *testing.T) {
	s := embedtest.Start(t)
	client := &http.Client{Timeout: timeout}
	for _, c := range []struct {
		body string
		code int
	}{
		{`{"input": 3}`, http.StatusBadRequest},
		{`{"input": []}`, http.StatusBadRequest},
		{`{"input": ["fine", ""]}`, http.StatusBadRequest},
		{`{"input": [[1, 2, 3]]}`, http.StatusBadRequest},
		{`{"input": "x", "encoding_format": "int8"}`, http.StatusBadRequest},
		{`{"input": "x", "dimensions": 256}`, http.StatusBadRequest},
		{`{"input": "x"`, http.StatusBadRequest},
		{`[]`, http.StatusBadRequest},
		{`{"input": "x", "model": null}`, http.StatusBadRequest},
		{`{"input": "x", "model": "text-embedding-3-small"}`, http.StatusNotFound},
	} {
		res, err := client.Post(s.BaseURL+"/embeddings", "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if res.StatusCode != c.code || err != nil || out.Error.Code == "" || out.Error.Message == "" {
			t.Errorf("%s: %d, error %+v (decode: %v); want %d with a code and a message", c.body, res.StatusCode, out.Error, err, c.code)
		}
	}
}

// BenchmarkEmbedQuestion is the encoder's share of a question's latency in
// hybrid retrieval: one short question through the product's embedder.
func BenchmarkEmbedQuestion(b *testing.B) {
	s := embedtest.Start(b)
	e := embedder(b, s)
	ctx := context.Background()
	for b.Loop() {
		if _, err := e.Embed(ctx, []string{"Where does Driftwood keep its files, and how do I move them?"}); err != nil {
			b.Fatal(err)
		}
	}
}
