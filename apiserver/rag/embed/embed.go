// Package embed turns text into vectors: through an OpenAI-compatible
// embeddings API, or with a built-in lexical embedder when no API key is
// configured, so the platform also runs with no external service.
package embed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"

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
//
// It asks for the vectors in base64 (little-endian float32 bytes), as the
// official openai-python client does: a question's 1,536 floats as JSON
// decimals cost about 5% of the server's CPU at a stream's start to parse,
// the same bytes in base64 a fraction of it (README, Performance). A server
// that does not speak base64 (it answers 400, or ignores the field and sends
// floats) is asked again for floats, which it is then always asked for.
type OpenAI struct {
	client *openai.Client
	model  string
	batch  int
	// floats is set once a server showed it does not serve base64: its
	// later batches ask for floats at once rather than pay two requests.
	floats atomic.Bool

	// Log receives the switch to floats (nil: discarded); set it before
	// the first Embed.
	Log *slog.Logger
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
	dims := 0 // the first vector's length, which every other must have
	for start := 0; start < len(texts); start += e.batch {
		end := min(start+e.batch, len(texts))
		res, err := e.embedBatch(ctx, texts[start:end])
		if err != nil {
			return nil, err
		}
		batch := make([][]float32, end-start)
		if len(res.Data) != len(batch) {
			return nil, fmt.Errorf("embeddings response: %d vectors for %d inputs", len(res.Data), len(batch))
		}
		for _, d := range res.Data {
			if d.Index < 0 || d.Index >= len(batch) || batch[d.Index] != nil {
				return nil, fmt.Errorf("embeddings response: bad index %d", d.Index)
			}
			// A store holds vectors of one length: a short or empty one
			// would be compared with the others as if it were whole.
			// A store holds vectors of one length: a short one (go-openai's
			// base64 decoding drops bytes short of a whole float without a
			// word) or an empty one would be compared with the others as if
			// it were whole. Within one call only: a length kept across
			// calls would refuse every question until a restart once the
			// model behind the name changed and the docs were re-ingested;
			// a question alone is checked by the store's dimensions.
			if dims == 0 {
				dims = len(d.Embedding)
			}
			if n := len(d.Embedding); n == 0 || n != dims {
				return nil, fmt.Errorf("embeddings response: vector %d has %d dimensions, the first %d", start+d.Index, n, dims)
			}
			batch[d.Index] = Normalize(d.Embedding)
		}
		out = append(out, batch...)
	}
	return out, nil
}

// embedBatch sends one batch's request: in base64 unless the server showed
// it serves only floats.
func (e *OpenAI) embedBatch(ctx context.Context, texts []string) (openai.EmbeddingResponse, error) {
	if e.floats.Load() {
		return e.request(ctx, texts, openai.EmbeddingEncodingFormatFloat)
	}
	res, err := e.request(ctx, texts, openai.EmbeddingEncodingFormatBase64)
	if err == nil || !noBase64(err) {
		return res, err
	}
	res, floatErr := e.request(ctx, texts, openai.EmbeddingEncodingFormatFloat)
	if floatErr != nil {
		// The float request failed too: base64 was not the trouble (a bad
		// input, a model the server lacks), so the next batch tries base64
		// again.
		return res, fmt.Errorf("%w (asked for floats after base64 failed: %w)", floatErr, err)
	}
	if e.floats.CompareAndSwap(false, true) && e.Log != nil {
		e.Log.Info("the embeddings server does not serve base64; asking it for floats from now on",
			"model", e.model, "base64_error", err.Error())
	}
	return res, nil
}

// request sends one request, with exponential backoff while the failure
// says trying again may help.
func (e *OpenAI) request(ctx context.Context, texts []string, format openai.EmbeddingEncodingFormat) (openai.EmbeddingResponse, error) {
	req := openai.EmbeddingRequestStrings{
		Model:          openai.EmbeddingModel(e.model),
		Input:          texts,
		EncodingFormat: format,
	}
	res, err := backoff.Retry(ctx, func() (openai.EmbeddingResponse, error) {
		res, err := e.client.CreateEmbeddings(ctx, req)
		if err != nil && !retryable(ctx, err) {
			return res, backoff.Permanent(err)
		}
		return res, err
	}, backoff.WithMaxTries(tries))
	if err != nil {
		return res, fmt.Errorf("embeddings request (model %s, %s): %w", e.model, format, err)
	}
	return res, nil
}

// noBase64: the failure of a base64 request says the server does not serve
// base64. Either it refused the field (400, or 422 from a FastAPI-style
// server validating it against "float" alone), or it answered 2xx but
// ignored the field and sent floats, which go-openai's base64 decoding finds
// where it expects a string. A decoding failure of an error answer (a 503
// whose body is a bare string) says nothing about base64: switching on it
// would ask a recovered server for floats until the next restart. A string
// that is not base64 is a broken answer, not a missing feature: its error
// is returned as it is.
func noBase64(err error) bool {
	switch status := httpStatus(err); status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return true
	case 0:
		_, ok := errors.AsType[*json.UnmarshalTypeError](err)
		return ok
	default:
		return false
	}
}

// httpStatus is the HTTP status of a failed answer, 0 when there was
// none. go-openai wraps an error body it cannot read as its APIError
// (`{"error": "text"}`) in a RequestError that holds the status, leaving
// the APIError's at 0: the first non-zero one is the answer's.
func httpStatus(err error) int {
	if apiErr, ok := errors.AsType[*openai.APIError](err); ok && apiErr.HTTPStatusCode != 0 {
		return apiErr.HTTPStatusCode
	}
	if reqErr, ok := errors.AsType[*openai.RequestError](err); ok {
		return reqErr.HTTPStatusCode
	}
	return 0
}

// retryable: the request may succeed if sent again, by the rule of the
// official OpenAI clients: the connection failed (and ctx is still live),
// or the server answered 408, 409, 429 or 5xx.
func retryable(ctx context.Context, err error) bool {
	if _, ok := errors.AsType[*url.Error](err); ok {
		return ctx.Err() == nil
	}
	switch status := httpStatus(err); status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	default:
		return status >= http.StatusInternalServerError
	}
}
