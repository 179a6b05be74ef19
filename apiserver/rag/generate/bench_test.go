package generate_test

import (
	"context"
	"slices"
	"testing"

	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/internal/openaitest"
)

// BenchmarkOpenAIStream: the server's own cost of reading one answer of
// 300 tokens from the model's stream (the fake writes them without
// pause), per token: what each token of each open stream costs before it
// reaches the client (make bench-stream measures the whole server).
func BenchmarkOpenAIStream(b *testing.B) {
	oai := openaitest.Start(b)
	const tokens = 300
	deltas := slices.Repeat([]string{"tok "}, tokens)
	oai.SetReply(func(openaitest.ChatRequest) openaitest.Reply {
		return openaitest.Reply{Deltas: deltas, PromptTokens: 100, CompletionTokens: tokens}
	})
	gen, err := generate.NewOpenAI(generate.OpenAIOptions{APIKey: openaitest.APIKey, BaseURL: oai.URL,
		FirstTokenTimeout: 60e9, IdleTimeout: 30e9})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := gen.Generate(context.Background(), generate.Request{Question: "q"}, func(string) error { return nil })
		if err != nil || res.Usage.CompletionTokens != tokens {
			b.Fatal(res, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
}
