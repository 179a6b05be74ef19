// Package embed turns text into vectors: through an OpenAI-compatible
// embeddings API, or with a built-in lexical embedder when no API key is
// configured, so the platform also runs with no external service.
package embed

import (
	"context"
	"errors"
	"fmt"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Embedder embeds texts; the vectors are L2-normalized so that a dot product
// is the cosine similarity.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Model names the model; stored with each chunk so that changing the
	// model re-embeds everything.
	Model() string
}

// OpenAIOptions configures the OpenAI-compatible embedder.
type OpenAIOptions struct {
	APIKey string
	// BaseURL points at any OpenAI-compatible server (Ollama, vLLM, LiteLLM).
	BaseURL string
	Model   string
	// BatchSize caps the inputs per request (default 96).
	BatchSize int
}

// OpenAI embeds through the embeddings endpoint of an OpenAI-compatible API.
type OpenAI struct {
	client openai.Client
	model  string
	batch  int
}

// DefaultEmbeddingModel is used when OPENAI_EMBEDDING_MODEL is unset.
const DefaultEmbeddingModel = "text-embedding-3-small"

// NewOpenAI builds the embedder. The environment is not read here: the
// caller's configuration is the single source of settings.
func NewOpenAI(o OpenAIOptions) (*OpenAI, error) {
	if o.APIKey == "" {
		return nil, errors.New("openai embedder: API key is empty")
	}
	if o.Model == "" {
		o.Model = DefaultEmbeddingModel
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 96
	}
	opts := []option.RequestOption{option.WithAPIKey(o.APIKey), option.WithMaxRetries(2)}
	if o.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(o.BaseURL))
	}
	return &OpenAI{client: openai.NewClient(opts...), model: o.Model, batch: o.BatchSize}, nil
}

// Model implements Embedder.
func (e *OpenAI) Model() string { return e.model }

// Embed implements Embedder.
func (e *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += e.batch {
		end := min(start+e.batch, len(texts))
		res, err := e.client.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model:          e.model,
			Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts[start:end]},
			EncodingFormat: openai.EmbeddingNewParamsEncodingFormatFloat,
		})
		if err != nil {
			return nil, fmt.Errorf("embeddings request (model %s): %w", e.model, err)
		}
		if len(res.Data) != end-start {
			return nil, fmt.Errorf("embeddings response: %d vectors for %d inputs", len(res.Data), end-start)
		}
		batch := make([][]float32, end-start)
		for _, d := range res.Data {
			if d.Index < 0 || int(d.Index) >= len(batch) || batch[d.Index] != nil {
				return nil, fmt.Errorf("embeddings response: bad index %d", d.Index)
			}
			v := make([]float32, len(d.Embedding))
			for i, x := range d.Embedding {
				v[i] = float32(x)
			}
			batch[d.Index] = Normalize(v)
		}
		out = append(out, batch...)
	}
	return out, nil
}
