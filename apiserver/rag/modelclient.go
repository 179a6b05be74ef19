package rag

import (
	"net/http"
	"time"
)

// modelIdleConnTimeout closes a connection to the model server left idle
// this long. Why not longer: a connection the server closed while idle
// (vLLM and LiteLLM run uvicorn, whose keep-alive ends after 5 s idle) is
// dropped from the pool as soon as its FIN arrives, and a request that
// meets such a connection before writing a byte is sent again on a new
// one (go-openai's bodies are byte buffers: GetBody is set); but a POST
// written in the instant the server closes is not retried (not
// idempotent), so a client does not keep connections much longer than it
// needs: under load they are reused within milliseconds.
const modelIdleConnTimeout = 30 * time.Second

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
	return &http.Client{Transport: t}
}
