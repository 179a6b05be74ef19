package embed_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/internal/openaitest"
)

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestLexicalRanksSharedRareWordsFirst(t *testing.T) {
	g := NewWithT(t)
	vs, err := embed.NewLexical().Embed(context.Background(), []string{
		"How do I rotate the signing keys?",
		"Rotating signing keys: call the rotation endpoint.",
		"Install the chart with Helm in the acme namespace.",
		"",
	})
	g.Expect(err).NotTo(HaveOccurred())
	for _, v := range vs[:3] {
		g.Expect(v).To(HaveLen(embed.LexicalDims))
		g.Expect(math.Sqrt(dot(v, v))).To(BeNumerically("~", 1, 1e-5))
	}
	g.Expect(dot(vs[0], vs[1])).To(BeNumerically(">", 0.3))
	g.Expect(dot(vs[0], vs[2])).To(BeNumerically("<", 0.05))
	g.Expect(dot(vs[3], vs[3])).To(BeZero(), "an empty text is the zero vector, not NaN")
}

func TestWordsStemAndDropStopWords(t *testing.T) {
	g := NewWithT(t)
	g.Expect(embed.Words("The keys are rotated; rotation of a key")).To(Equal([]string{"key", "rotat", "rotat", "key"}))
	idx, val := embed.Sparse("key key rotation")
	// Terms: key, rotat, and the pairs "key key" and "key rotat".
	g.Expect(idx).To(HaveLen(4))
	g.Expect(val).To(HaveLen(len(idx)))
}

func TestOpenAIBatchesAndKeepsOrder(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	e, err := embed.NewOpenAI(embed.OpenAIOptions{APIKey: openaitest.APIKey, BaseURL: oai.URL, BatchSize: 2})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(e.Model()).To(Equal(embed.DefaultEmbeddingModel))
	texts := []string{"alpha beta", "gamma delta", "alpha beta", "epsilon", "gamma delta"}
	vs, err := e.Embed(context.Background(), texts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(vs).To(HaveLen(5))
	g.Expect(oai.EmbeddingCalls()).To(BeNumerically("==", 3))
	g.Expect(vs[0]).To(HaveLen(openaitest.Dims))
	g.Expect(vs[2]).To(Equal(vs[0]))
	g.Expect(vs[4]).To(Equal(vs[1]))
	g.Expect(math.Sqrt(dot(vs[3], vs[3]))).To(BeNumerically("~", 1, 1e-5), "normalized")

	// A 500 is retried twice, then reported.
	oai.FailEmbeddings(true)
	calls := oai.EmbeddingCalls()
	_, err = e.Embed(context.Background(), texts)
	g.Expect(err).To(MatchError(ContainSubstring("embeddings request")))
	g.Expect(err).To(MatchError(ContainSubstring("500")))
	g.Expect(oai.EmbeddingCalls() - calls).To(BeNumerically("==", 3))

	_, err = embed.NewOpenAI(embed.OpenAIOptions{})
	g.Expect(err).To(HaveOccurred())
}

// newOpenAI is an embedder on the fake, one input per request, its log in
// logs.
func newOpenAI(t testing.TB, oai *openaitest.Server, logs *bytes.Buffer) *embed.OpenAI {
	t.Helper()
	e, err := embed.NewOpenAI(embed.OpenAIOptions{APIKey: openaitest.APIKey, BaseURL: oai.URL, BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if logs != nil {
		e.Log = slog.New(slog.NewTextHandler(logs, nil))
	}
	return e
}

var texts = []string{"rotate the signing keys", "install the chart with helm", "where are the files kept"}

// floatVectors are the vectors of texts from a server that serves floats
// only.
func floatVectors(t *testing.T) [][]float32 {
	t.Helper()
	oai := openaitest.Start(t)
	oai.SetBase64(openaitest.Base64Rejected)
	oai.DenseEmbeddings(true)
	vs, err := newOpenAI(t, oai, nil).Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// The embedder asks for base64, and its vectors are the very ones the
// floats give.
func TestOpenAIBase64EqualsFloats(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	oai.DenseEmbeddings(true)
	vs, err := newOpenAI(t, oai, nil).Embed(context.Background(), texts)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(oai.EmbeddingFormats()).To(Equal([]string{"base64", "base64", "base64"}))
	g.Expect(vs).To(Equal(floatVectors(t)))
	g.Expect(vs[0]).To(HaveLen(openaitest.Dims))
	g.Expect(math.Sqrt(dot(vs[0], vs[0]))).To(BeNumerically("~", 1, 1e-5), "normalized")
}

// A server that does not serve base64, whether it says so (400) or sends
// floats anyway, is asked again for floats; from then on the embedder asks
// it for floats at once, and says so once in its log.
func TestOpenAIFallsBackToFloats(t *testing.T) {
	want := floatVectors(t)
	for name, support := range map[string]openaitest.Base64Support{
		"rejected": openaitest.Base64Rejected, "ignored": openaitest.Base64Ignored,
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			oai := openaitest.Start(t)
			oai.SetBase64(support)
			oai.DenseEmbeddings(true)
			var logs bytes.Buffer
			e := newOpenAI(t, oai, &logs)
			vs, err := e.Embed(context.Background(), texts)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(vs).To(Equal(want))
			g.Expect(oai.EmbeddingFormats()).To(Equal([]string{"base64", "float", "float", "float"}),
				"only the first batch pays for the base64 request")
			_, err = e.Embed(context.Background(), texts[:1])
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(oai.EmbeddingCalls()).To(BeNumerically("==", 5))
			g.Expect(strings.Count(logs.String(), "does not serve base64")).To(Equal(1), logs.String())
			g.Expect(logs.String()).To(ContainSubstring("level=INFO"))
		})
	}
}

// When the float request fails too, base64 was not the trouble: its error
// is returned and the next batch asks for base64 again.
func TestOpenAIFloatFailingToo(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	oai.FailEmbeddingsWith(http.StatusBadRequest)
	var logs bytes.Buffer
	e := newOpenAI(t, oai, &logs)
	_, err := e.Embed(context.Background(), texts[:1])
	g.Expect(err).To(MatchError(And(ContainSubstring("asked for floats after base64 failed"), ContainSubstring("float"),
		ContainSubstring("400"))))
	g.Expect(oai.EmbeddingFormats()).To(Equal([]string{"base64", "float"}), "a 400 is not retried")

	oai.FailEmbeddingsWith(0)
	_, err = e.Embed(context.Background(), texts[:1])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(oai.EmbeddingFormats()).To(Equal([]string{"base64", "float", "base64"}))
	g.Expect(logs.String()).To(BeEmpty())
}

// A broken base64 answer is an error (not a panic, not a vector), and not
// a reason to give base64 up.
func TestOpenAIBrokenBase64(t *testing.T) {
	g := NewWithT(t)
	oai := openaitest.Start(t)
	e := newOpenAI(t, oai, nil)

	// Not base64: its length is not a multiple of 4.
	oai.SetBase64(openaitest.Base64Corrupt)
	_, err := e.Embed(context.Background(), texts[:1])
	g.Expect(err).To(MatchError(And(ContainSubstring("embeddings request"), ContainSubstring("illegal base64"))))
	g.Expect(oai.EmbeddingFormats()).To(Equal([]string{"base64"}), "neither retried nor asked for floats")

	// Bytes that are not a whole number of float32s: the vector comes out
	// shorter than the others.
	oai.SetBase64(openaitest.Base64Short)
	e2, err := embed.NewOpenAI(embed.OpenAIOptions{APIKey: openaitest.APIKey, BaseURL: oai.URL})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = e2.Embed(context.Background(), texts)
	g.Expect(err).To(MatchError(ContainSubstring("vector 2 has 1535 dimensions, the first 1536")))

	oai.SetBase64(openaitest.Base64Served)
	_, err = e.Embed(context.Background(), texts[:1])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(oai.EmbeddingFormats()).To(Equal([]string{"base64", "base64", "base64"}))
}

// BenchmarkOpenAIEmbedQuestion is the embedding call at a stream's start:
// one question's 1,536 dimensions through the embedder, from the fake on
// loopback (dense vectors, as a real model's; the fake answers a repeated
// request from its last encoding, so the figures are the client's), as
// JSON floats and as base64.
func BenchmarkOpenAIEmbedQuestion(b *testing.B) {
	for _, format := range []string{"float", "base64"} {
		b.Run(format, func(b *testing.B) {
			oai := openaitest.Start(b)
			oai.DenseEmbeddings(true)
			if format == "float" {
				// The embedder asks for floats once the server refused base64.
				oai.SetBase64(openaitest.Base64Rejected)
			}
			e := newOpenAI(b, oai, nil)
			ctx := context.Background()
			question := []string{"How do I rotate the signing keys of the API without downtime?"}
			if _, err := e.Embed(ctx, question); err != nil {
				b.Fatal(err)
			}
			calls := oai.EmbeddingCalls()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Embed(ctx, question); err != nil {
					b.Fatal(err)
				}
			}
			if got := oai.EmbeddingFormats(); got[len(got)-1] != format || oai.EmbeddingCalls()-calls != int64(b.N) {
				b.Fatalf("asked for %s, %d requests for %d questions; want %s, one each", got[len(got)-1], oai.EmbeddingCalls()-calls, b.N, format)
			}
		})
	}
}

// How other OpenAI-compatible servers refuse base64, at the wire: a
// FastAPI-style 422, and a 400 whose error is a bare string (go-openai then
// reports the status on its RequestError, not its APIError) both lead to
// floats; an outage answered with a bare string (503) is retried and is no
// reason to give base64 up once the server is back.
func TestOpenAIRefusalsOfOtherServers(t *testing.T) {
	for name, tc := range map[string]struct {
		status     int
		body       string
		failures   int // base64 requests refused before the server serves it
		wantFloats bool
	}{
		"422 from a validating server": {http.StatusUnprocessableEntity, `{"detail":[{"msg":"unexpected value; permitted: 'float'"}]}`, 99, true},
		"400 with a bare string error": {http.StatusBadRequest, `{"error":"encoding_format must be float"}`, 99, true},
		// Down for all three tries of the first question.
		"503 with a bare string body": {http.StatusServiceUnavailable, `"Service Unavailable"`, 3, false},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			var mu sync.Mutex
			var formats []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var req struct {
					EncodingFormat string `json:"encoding_format"`
				}
				_ = json.NewDecoder(r.Body).Decode(&req)
				mu.Lock()
				formats = append(formats, req.EncodingFormat)
				refused := 0
				for _, f := range formats {
					if f == "base64" {
						refused++
					}
				}
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				if req.EncodingFormat == "base64" && refused <= tc.failures {
					w.WriteHeader(tc.status)
					_, _ = io.WriteString(w, tc.body)
					return
				}
				vec := `[0.6,0.8]`
				if req.EncodingFormat == "base64" {
					b := make([]byte, 8)
					binary.LittleEndian.PutUint32(b, math.Float32bits(0.6))
					binary.LittleEndian.PutUint32(b[4:], math.Float32bits(0.8))
					vec = `"` + base64.StdEncoding.EncodeToString(b) + `"`
				}
				_, _ = io.WriteString(w, `{"object":"list","model":"m","data":[{"object":"embedding","index":0,"embedding":`+vec+`}]}`)
			}))
			defer srv.Close()
			e, err := embed.NewOpenAI(embed.OpenAIOptions{APIKey: "k", BaseURL: srv.URL})
			g.Expect(err).NotTo(HaveOccurred())
			for i := range 2 {
				vs, err := e.Embed(context.Background(), []string{"q"})
				if !tc.wantFloats && i == 0 {
					g.Expect(err).To(MatchError(ContainSubstring("503")), "an outage is an error, not a fallback")
					continue
				}
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(vs).To(HaveLen(1))
				g.Expect(vs[0]).To(HaveLen(2))
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.wantFloats {
				g.Expect(formats).To(Equal([]string{"base64", "float", "float"}), "refused once, then floats")
			} else {
				g.Expect(formats).To(Equal([]string{"base64", "base64", "base64", "base64"}), "retried, never floats, and base64 kept")
			}
		})
	}
}
