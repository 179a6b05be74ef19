package rag

import (
	"context"
	"io"
	"net/http"
	"time"
)

// modelIdleConnTimeout closes a connection to the model server left idle
// this long: a cap on the connections a quiet client keeps. It does not
// avoid uvicorn's keep-alive race (vLLM and LiteLLM close a connection
// after 5 s idle): a connection the server closed while idle is dropped
// from the pool as soon as its FIN arrives, and a request that meets such
// a connection before writing a byte is sent again on a new one
// (go-openai's bodies are byte buffers: GetBody is set); but a POST
// written in the instant the server closes fails (not idempotent, so the
// Transport does not resend it). Under load connections are reused within
// milliseconds, far inside the server's 5 s.
const modelIdleConnTimeout = 30 * time.Second

// modelDrainBytes bounds what closing a response's body reads of what is
// left of it (see drainingTransport).
const modelDrainBytes = 4 << 10

// modelDrainWait bounds how long closing a response's body waits for what
// is left of it: uvicorn ends a response within a millisecond or two of
// its last write.
const modelDrainWait = 50 * time.Millisecond

// newModelClient is the HTTP client of every request to the model server
// (embeddings, the answers' streams, the rewrites), built once per engine.
// Why its own transport: http.DefaultTransport keeps 2 idle connections
// per host, so with hundreds of answers streaming over HTTP/1.1 (a vLLM,
// Ollama or LiteLLM in the cluster) nearly every answer dialed a new
// connection (and did a TLS handshake where TLS is used) and the
// connections of finished ones were closed. It keeps c.ModelConns idle
// (the answers streamed at once); otherwise it is DefaultTransport's, so
// proxies, HTTP/2 and the dial and TLS handshake bounds stay as they were.
func newModelClient(c Config) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = c.ModelConns
	// One host (OPENAI_BASE_URL): the per-host bound is the bound, and
	// DefaultTransport's MaxIdleConns (100 in all) would cut it.
	t.MaxIdleConns = c.ModelConns
	t.IdleConnTimeout = modelIdleConnTimeout
	return &http.Client{Transport: drainingTransport{t}}
}

// drainingTransport reads what is left of a response's body, up to
// modelDrainBytes, before closing it. Why: the Transport keeps an HTTP/1.1
// connection only when its response was read to the end, and go-openai's
// callers close before it: an answer's stream stops at "data: [DONE]",
// before the chunked body's end ("0\r\n\r\n") which uvicorn's servers
// (vLLM, LiteLLM, Ollama's proxies) send a moment later, and the
// embeddings and rewrites stop at the JSON's end, before the encoder's
// newline and the chunked end. Each such close cost a connection (and a
// TLS handshake): measured with net/http alone, a server that ends its
// response 1 ms after [DONE] had 0 of 50 requests reuse a connection.
// The drain is bounded in bytes (a body with more left is not worth a
// connection) and in time: by modelDrainWait of its own, through a
// context of the request's that Close cancels (the Transport then ends
// the body's read), so a server that holds its response open after
// [DONE] delays an answer's end by that much at most, and by the
// request's own context, so a stream cut mid-answer (the user went away,
// a silence bound, a deadline) returns at once.
type drainingTransport struct{ next http.RoundTripper }

func (t drainingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	resp, err := t.next.RoundTrip(r.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = drainOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// drainOnClose is a response body that drainingTransport drains on Close.
type drainOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc // the request's context, derived
}

func (b drainOnClose) Close() error {
	stop := time.AfterFunc(modelDrainWait, b.cancel)
	_, _ = io.CopyN(io.Discard, b.ReadCloser, modelDrainBytes)
	stop.Stop()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
