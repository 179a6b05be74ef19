// Package embed turns text into vectors: through an OpenAI-compatible
// embeddings API, or with a built-in lexical embedder when no API key is
// configured, so the platform also runs with no external service.
package embed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/cenkalti/backoff/v5"
	openai "github.com/sashabaranov/go-openai"
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
	// HTTPClient sends the requests (nil: go-openai's, on
	// http.DefaultTransport); rag.New shares one with the generator.
	HTTPClient *http.Client
}

// OpenAI embeds through the embeddings endpoint of an OpenAI-compatible API,
// with github.com/sashabaranov/go-openai (a small client: the server's idle
// memory, README "Idle memory").
type OpenAI struct {
	client *openai.Client
	model  string
	batch  int
}

// DefaultEmbeddingModel is used when OPENAI_EMBEDDING_MODEL is unset.
const DefaultEmbeddingModel = "text-embedding-3-small"

// tries bounds the requests for one batch: the first and two retries, with
// exponential backoff, when the failure says trying again may help.
const tries = 3

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
	cfg := openai.DefaultConfig(o.APIKey)
	if o.BaseURL != "" {
		cfg.BaseURL = o.BaseURL
	}
	if o.HTTPClient != nil {
		cfg.HTTPClient = o.HTTPClient
	}
	return &OpenAI{client: openai.NewClientWithConfig(cfg), model: o.Model, batch: o.BatchSize}, nil
}

// Model implements Embedder.
func (e *OpenAI) Model() string { return e.model }

// Embed implements Embedder.
func (e *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += e.batch {
		end := min(start+e.batch, len(texts))
		req := openai.EmbeddingRequestStrings{
			Model:          openai.EmbeddingModel(e.model),
			Input:          texts[start:end],
			EncodingFormat: openai.EmbeddingEncodingFormatFloat,
		}
		res, err := backoff.Retry(ctx, func() (openai.EmbeddingResponse, error) {
			res, err := e.client.CreateEmbeddings(ctx, req)
			if err != nil && !retryable(ctx, err) {
				return res, backoff.Permanent(err)
			}
			return res, err
		}, backoff.WithMaxTries(tries))
		if err != nil {
			return nil, fmt.Errorf("embeddings request (model %s): %w", e.model, err)
		}
		if len(res.Data) != end-start {
			return nil, fmt.Errorf("embeddings response: %d vectors for %d inputs", len(res.Data), end-start)
		}
		batch := make([][]float32, end-start)
		for _, d := range res.Data {
			if d.Index < 0 || d.Index >= len(batch) || batch[d.Index] != nil {
				return nil, fmt.Errorf("embeddings response: bad index %d", d.Index)
			}
			batch[d.Index] = Normalize(d.Embedding)
		}
		out = append(out, batch...)
	}
	return out, nil
}

// retryable: the request may succeed if sent again, by the rule of the
// official OpenAI clients: the connection failed (and ctx is still live),
// or the server answered 408, 409, 429 or 5xx.
func retryable(ctx context.Context, err error) bool {
	if _, ok := errors.AsType[*url.Error](err); ok {
		return ctx.Err() == nil
	}
	status := 0
	if apiErr, ok := errors.AsType[*openai.APIError](err); ok {
		status = apiErr.HTTPStatusCode
	} else if reqErr, ok := errors.AsType[*openai.RequestError](err); ok {
		status = reqErr.HTTPStatusCode
	}
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	default:
		return status >= http.StatusInternalServerError
	}
}
