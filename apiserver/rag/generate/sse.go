package generate

// The answer's stream: the streamed chat completion's request, and its
// server-sent events read with github.com/tmaxmax/go-sse. Why not the
// client's CreateChatCompletionStream and RecvRaw: its line reader copies
// each line and runs three regular expressions on it (7% of the server's
// CPU at 250 streams, make bench-stream -profile, where the floor's reader
// does neither), and it hides when it is about to wait for the model,
// which Request.Waiting needs. The body is closed at [DONE]; the model
// client's Transport reads what is left of it (rag.newModelClient's
// drainingTransport, bounded) so that the connection is kept. The
// request's body and the errors of a failed status are the client's
// types, as before.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"

	openai "github.com/sashabaranov/go-openai"
	"github.com/tmaxmax/go-sse"
)

// streamChat posts the streamed chat completion and returns its body.
func (g *OpenAI) streamChat(ctx context.Context, params openai.ChatCompletionRequest) (io.ReadCloser, error) {
	b, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encode the request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.completions, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+g.opts.APIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := g.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusBadRequest {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return resp.Body, nil
}

// maxErrorBody bounds what is read of a failed response's body.
const maxErrorBody = 64 << 10

// statusError is the error of a failed response as the client gives it:
// the service's *openai.APIError, or an *openai.RequestError when the
// body holds none.
func statusError(resp *http.Response) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return fmt.Errorf("status %s, reading its body: %w", resp.Status, err)
	}
	var e openai.ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		return &openai.RequestError{HTTPStatus: resp.Status, HTTPStatusCode: resp.StatusCode, Err: err, Body: body}
	}
	e.Error.HTTPStatus, e.Error.HTTPStatusCode = resp.Status, resp.StatusCode
	return e.Error
}

// maxEvent bounds an event of the stream (go-sse's MaxEventSize; its
// default is 64 KiB): a chunk is one token's, far below it, and a service
// that never ends its event must not grow the server's memory until the
// silence bound cuts it.
const maxEvent = 1 << 20

// events are the data of the stream's events, spaces trimmed: JSON chunks
// and [DONE]; the iteration ends at the body's end (an event cut by it is
// dropped) or with the error that stopped the read. waiting (nil: none)
// is called before each read of the body, which go-sse does only when
// the events it holds are all given out: before a wait for the model,
// never between events read together.
func events(body io.Reader, waiting func()) iter.Seq2[string, error] {
	if waiting != nil {
		body = waitingReader{body, waiting}
	}
	return func(yield func(string, error) bool) {
		for ev, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: maxEvent}) {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("an event of the stream is longer than %d bytes: %w", maxEvent, err)
			}
			if !yield(strings.TrimSpace(ev.Data), err) {
				return
			}
		}
	}
}

// waitingReader calls waiting before each read of r.
type waitingReader struct {
	r       io.Reader
	waiting func()
}

func (w waitingReader) Read(p []byte) (int, error) {
	w.waiting()
	return w.r.Read(p)
}
