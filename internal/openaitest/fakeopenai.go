// Package openaitest is a FAKE OpenAI-compatible server for tests: the
// embeddings endpoint and chat completions (streamed with SSE, or whole) at the wire level,
// so the real client (github.com/sashabaranov/go-openai) is exercised. Embeddings are hashed bags of
// words (deterministic, and similar texts get similar vectors), sent as
// JSON floats or, when asked, as base64 float32 bytes like OpenAI's; chat
// replies are scripted by the test, streamed or, for a request that does
// not ask for a stream, whole.
package openaitest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
)

// Dims is the size of the fake's embeddings (that of text-embedding-3-small).
const Dims = 1536

// APIKey is the only key the fake accepts.
const APIKey = "sk-fake-test-key"

// Reply scripts one chat completion.
type Reply struct {
	// Status, when not 0 or 200, answers the request with this HTTP error.
	Status int
	// Deltas are streamed one SSE chunk each, or sent as one message when
	// the request is not streamed.
	Deltas []string
	// Delay is slept before each delta (to let a test disconnect mid-stream).
	Delay time.Duration
	// Stall is slept once, before delta StallAt (0: before the first, once
	// the response has started), or until the client goes away: a model
	// that stops writing without closing the stream. A reply not streamed
	// is held back by Stall before it starts.
	Stall   time.Duration
	StallAt int
	// AbortAfter > 0 cuts the connection after that many deltas, without
	// [DONE], like a crashed upstream.
	AbortAfter int
	// Reset makes that cut a TCP reset (RST) rather than a close (FIN),
	// like an upstream whose host or proxy died mid-stream.
	Reset                          bool
	PromptTokens, CompletionTokens int64
	// Linger is slept after [DONE] is flushed, before the response ends
	// (the chunked body's end is written): uvicorn's servers (vLLM,
	// LiteLLM) send that end a moment after the last event.
	Linger time.Duration
	// Sending, when set, is called with each delta's index right before
	// the delta is written and flushed: when the model's token leaves, for
	// a benchmark that measures what the server adds to it.
	Sending func(i int)
}

// ChatRequest is what the fake received for a chat completion.
type ChatRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Temperature         *float64 `json:"temperature"`
	MaxCompletionTokens *int64   `json:"max_completion_tokens"`
}

// Server is the fake.
type Server struct {
	URL string // base URL to give the client (ends in /v1)

	srv            *httptest.Server
	embedCalls     atomic.Int64
	embeddedInputs atomic.Int64
	mu             sync.Mutex
	reply          func(ChatRequest) Reply
	chats          []ChatRequest
	failEmbeddings atomic.Int64 // the status every embeddings request gets (0: none)
	conns          atomic.Int64
	peers          []string
	base64         Base64Support
	dense          bool
	formats        []string
	// last is the previous embeddings request's body and answer, which a
	// request identical to it gets without being encoded again.
	last struct{ key, body []byte }
}

// Base64Support says how the fake answers a request for base64 embeddings
// (encoding_format "base64", what openai-python asks for by default).
type Base64Support int

const (
	// Base64Served: little-endian float32 bytes in base64, as OpenAI,
	// vLLM, TEI or llama.cpp send them.
	Base64Served Base64Support = iota
	// Base64Rejected: 400, as a server that accepts only "float".
	Base64Rejected
	// Base64Ignored: floats, as a server that ignores the field.
	Base64Ignored
	// Base64Corrupt: a string that is not base64 (its last character cut,
	// so its length is not a multiple of 4): a broken server.
	Base64Corrupt
	// Base64Short: the answer's last vector loses its last 2 bytes, so
	// its length is not a multiple of 4 bytes: a broken server.
	Base64Short
)

// Start runs the fake until the test ends.
func Start(t testing.TB) *Server {
	s := &Server{reply: func(ChatRequest) Reply {
		return Reply{Deltas: []string{"The answer ", "is in ", "the docs [1]."}, PromptTokens: 42, CompletionTokens: 7}
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.srv = httptest.NewUnstartedServer(s.auth(mux))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.Start()
	s.URL = s.srv.URL + "/v1"
	t.Cleanup(s.srv.Close)
	return s
}

// SetReply scripts the chat completions that follow.
func (s *Server) SetReply(f func(ChatRequest) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = f
}

// FailEmbeddings makes the embeddings endpoint answer 500.
func (s *Server) FailEmbeddings(fail bool) {
	status := 0
	if fail {
		status = http.StatusInternalServerError
	}
	s.FailEmbeddingsWith(status)
}

// FailEmbeddingsWith makes the embeddings endpoint answer status, whatever
// the format asked for (0: answer).
func (s *Server) FailEmbeddingsWith(status int) { s.failEmbeddings.Store(int64(status)) }

// SetBase64 sets how base64 requests are answered (default Base64Served).
func (s *Server) SetBase64(b Base64Support) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base64 = b
}

// DenseEmbeddings gives every dimension of the vectors that follow a small
// value (deterministic per text), as a real model's are: their floats as
// JSON are then as long as OpenAI's (about 20 characters each) rather than
// mostly "0", for a benchmark of what reading them costs. Similarities
// move by about a thousandth, so tests with thresholds leave it off.
func (s *Server) DenseEmbeddings(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dense = on
}

// EmbeddingFormats returns the encoding_format of each embeddings request
// received so far ("" when it had none), in order.
func (s *Server) EmbeddingFormats() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.formats...)
}

// EmbeddingCalls counts embeddings requests; EmbeddedInputs counts texts.
func (s *Server) EmbeddingCalls() int64 { return s.embedCalls.Load() }
func (s *Server) EmbeddedInputs() int64 { return s.embeddedInputs.Load() }

// Conns counts the connections clients opened: what their keep-alive
// saved shows in it.
func (s *Server) Conns() int64 { return s.conns.Load() }

// CloseClientConnections closes every connection clients hold to the fake,
// from its side, as a model server ending idle keep-alive connections
// does: a client's pooled connections then wind down.
func (s *Server) CloseClientConnections() { s.srv.CloseClientConnections() }

// Peers returns the client address (its connection) of each request
// received so far, in order: which requests shared a connection.
func (s *Server) Peers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.peers...)
}

// ChatRequests returns the chat completion requests received so far.
func (s *Server) ChatRequests() []ChatRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ChatRequest(nil), s.chats...)
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+APIKey {
			writeError(w, http.StatusUnauthorized, "invalid_api_key")
			return
		}
		s.mu.Lock()
		s.peers = append(s.peers, r.RemoteAddr)
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": "fake: " + code, "type": code, "code": code}})
}

// embeddingsRequest is what the fake reads of an embeddings request.
type embeddingsRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	body           []byte
	inputs         []string
}

// readEmbeddings reads an embeddings request, or answers 400.
func readEmbeddings(w http.ResponseWriter, r *http.Request) (embeddingsRequest, bool) {
	var req embeddingsRequest
	body, err := io.ReadAll(r.Body)
	if err != nil || json.Unmarshal(body, &req) != nil {
		writeError(w, http.StatusBadRequest, "invalid_request")
		return req, false
	}
	req.body = body
	if err := json.Unmarshal(req.Input, &req.inputs); err != nil {
		var one string
		if err := json.Unmarshal(req.Input, &one); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_input")
			return req, false
		}
		req.inputs = []string{one}
	}
	return req, true
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	s.embedCalls.Add(1)
	req, ok := readEmbeddings(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	s.formats = append(s.formats, req.EncodingFormat)
	support, dense := s.base64, s.dense
	s.mu.Unlock()
	if status := int(s.failEmbeddings.Load()); status != 0 {
		code := "invalid_request"
		if status >= http.StatusInternalServerError {
			code = "server_error"
		}
		writeError(w, status, code)
		return
	}
	s.embeddedInputs.Add(int64(len(req.inputs)))
	asBase64 := false
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		switch support {
		case Base64Rejected:
			writeError(w, http.StatusBadRequest, "invalid_encoding_format")
			return
		case Base64Ignored:
		default:
			asBase64 = true
		}
	default:
		writeError(w, http.StatusBadRequest, "invalid_encoding_format")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// A benchmark repeats one question: answering it from the last
	// encoding leaves the client's reading of the answer, not the fake's
	// writing of it, in the figures.
	key := append(fmt.Appendf(nil, "%d %t ", support, dense), req.body...)
	s.mu.Lock()
	out := s.last.body
	if !bytes.Equal(s.last.key, key) {
		out = nil
	}
	s.mu.Unlock()
	if out == nil {
		out = encodeEmbeddings(req, support, dense, asBase64)
		s.mu.Lock()
		s.last.key, s.last.body = key, out
		s.mu.Unlock()
	}
	_, _ = w.Write(out)
}

// encodeEmbeddings is the answer to req: its vectors as floats or in
// base64 (broken as support says).
func encodeEmbeddings(req embeddingsRequest, support Base64Support, dense, asBase64 bool) []byte {
	data := make([]map[string]any, len(req.inputs))
	for i, in := range req.inputs {
		v := vector(in, dense)
		var emb any = v
		if asBase64 {
			emb = encodeBase64(v, support, i == len(req.inputs)-1)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	out, _ := json.Marshal(map[string]any{
		"object": "list", "model": req.Model, "data": data,
		"usage": map[string]any{"prompt_tokens": len(req.inputs), "total_tokens": len(req.inputs)},
	})
	return out
}

// vector is a hashed bag of words in a different space than the offline
// embedder's (other size, other seed), not normalized, as real APIs may be.
// Its values are float32s (a model's), held as float64s so that they
// encode as OpenAI's do: the float64 digits of a float32. Dense, every
// dimension also gets a small value drawn from the text's hash.
func vector(text string, dense bool) []float64 {
	v := make([]float64, Dims)
	for term, tf := range embed.Terms(text) {
		v[embed.Bucket("fake:"+term, Dims)] += 2 * (1 + math.Log(float64(tf)))
	}
	if dense {
		h := fnv.New64a()
		_, _ = io.WriteString(h, text)
		rnd := rand.New(rand.NewPCG(h.Sum64(), 0))
		for i := range v {
			v[i] += rnd.Float64()*0.01 - 0.005
		}
	}
	for i, x := range v {
		v[i] = float64(float32(x))
	}
	return v
}

// encodeBase64 is OpenAI's base64 encoding of v: its float32s'
// little-endian bytes; broken as support says (the last vector, for
// Base64Short).
func encodeBase64(v []float64, support Base64Support, last bool) string {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(x)))
	}
	if support == Base64Short && last {
		b = b[:len(b)-2]
	}
	enc := base64.StdEncoding.EncodeToString(b)
	if support == Base64Corrupt {
		enc = enc[:len(enc)-1]
	}
	return enc
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req ChatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	s.mu.Lock()
	s.chats = append(s.chats, req)
	reply := s.reply(req)
	s.mu.Unlock()
	if reply.Status != 0 && reply.Status != http.StatusOK {
		writeError(w, reply.Status, "scripted_error")
		return
	}
	if !req.Stream {
		s.complete(w, r, req, reply)
		return
	}
	stream(w, r, req, reply)
}

// stream answers a streamed completion: one SSE event per delta, each
// written and flushed on its own, as the model produces it.
func stream(w http.ResponseWriter, r *http.Request, req ChatRequest, reply Reply) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	write := func(b []byte) {
		_, _ = w.Write(b)
		flusher.Flush()
	}
	send := func(v any) {
		b, _ := json.Marshal(v)
		write(fmt.Appendf(nil, "data: %s\n\n", b))
	}
	send(chunk(req.Model, chunkDelta{Role: "assistant", Content: ""}, nil))
	frame := newDeltaFrame(req.Model)
	var buf []byte
	var pace pacer
	defer pace.stop()
	for i, d := range reply.Deltas {
		if reply.AbortAfter > 0 && i == reply.AbortAfter {
			cut(w, reply.Reset)
			return
		}
		if reply.Stall > 0 && i == reply.StallAt && !sleep(r, reply.Stall) {
			return
		}
		if reply.Delay > 0 && !pace.sleep(r, reply.Delay) {
			return
		}
		if reply.Sending != nil {
			reply.Sending(i)
		}
		if d == "" { // the chunk's encoding omits empty content
			send(chunk(req.Model, chunkDelta{}, nil))
			continue
		}
		buf = frame.append(buf[:0], d)
		write(buf)
	}
	stop := "stop"
	send(chunk(req.Model, chunkDelta{}, &stop))
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		send(map[string]any{
			"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": req.Model,
			"choices": []any{},
			"usage": map[string]any{"prompt_tokens": reply.PromptTokens, "completion_tokens": reply.CompletionTokens,
				"total_tokens": reply.PromptTokens + reply.CompletionTokens},
		})
	}
	write([]byte("data: [DONE]\n\n"))
	if reply.Linger > 0 {
		sleep(r, reply.Linger)
	}
}

// complete answers a non-streaming completion: the reply's deltas as one
// message, after its Stall (a model slower than the client's timeout).
func (s *Server) complete(w http.ResponseWriter, r *http.Request, req ChatRequest, reply Reply) {
	if reply.Stall > 0 && !sleep(r, reply.Stall) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": strings.Join(reply.Deltas, "")}}},
		"usage": map[string]any{"prompt_tokens": reply.PromptTokens, "completion_tokens": reply.CompletionTokens,
			"total_tokens": reply.PromptTokens + reply.CompletionTokens},
	})
}

// cut cuts the connection mid-stream: no [DONE], no finish_reason; with
// reset, a TCP reset (RST) rather than a close (FIN).
func cut(w http.ResponseWriter, reset bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok && reset {
		_ = tcp.SetLinger(0) // close sends RST
	}
	_ = conn.Close()
}

// completionChunk is one chunk of a streamed chat completion.
type completionChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	FinishReason *string    `json:"finish_reason"`
}

// chunkDelta: the first chunk says the role (and empty content), the
// others only content, the last one nothing.
type chunkDelta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

func chunk(model string, delta chunkDelta, finish *string) completionChunk {
	return completionChunk{ID: "chatcmpl-fake", Object: "chat.completion.chunk", Created: 1, Model: model,
		Choices: []chunkChoice{{Delta: delta, FinishReason: finish}}}
}

// deltaFrame is the SSE event of a content chunk, split around its text:
// encoded once per reply, so that a token costs the encoding of its text
// alone (thousands of streams of a benchmark send one per token, on the
// machine that runs the server under measurement). Its bytes are those of
// the chunk's JSON encoding.
type deltaFrame struct{ head, tail []byte }

// mark stands for the text where the frame is cut. Its encoding, quotes
// included, may also appear earlier in the chunk: the model "\"\x00"
// encodes as "\"\u0000", which contains it. The cut is safe because it is
// at the last occurrence (bytes.LastIndex) and the content is the chunk's
// last string value, followed only by the fixed "finish_reason" key, null
// and brackets.
const mark = "\x00"

func newDeltaFrame(model string) deltaFrame {
	b, _ := json.Marshal(chunk(model, chunkDelta{Content: mark}, nil))
	enc, _ := json.Marshal(mark)
	at := bytes.LastIndex(b, enc)
	return deltaFrame{
		head: append([]byte("data: "), b[:at]...),
		tail: append(b[at+len(enc):len(b):len(b)], "\n\n"...),
	}
}

// append appends the event of the chunk whose content is text (not empty).
func (f deltaFrame) append(buf []byte, text string) []byte {
	enc, _ := json.Marshal(text)
	buf = append(buf, f.head...)
	buf = append(buf, enc...)
	return append(buf, f.tail...)
}

// pacer sleeps before each delta of a reply on one timer, not one per
// delta.
type pacer struct{ t *time.Timer }

// sleep waits d, or until the client goes away (false).
func (p *pacer) sleep(r *http.Request, d time.Duration) bool {
	if p.t == nil {
		p.t = time.NewTimer(d)
	} else {
		p.t.Reset(d)
	}
	select {
	case <-p.t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (p *pacer) stop() {
	if p.t != nil {
		p.t.Stop()
	}
}

// sleep waits d, or until the client goes away (false).
func sleep(r *http.Request, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

// Deltas splits text into word-sized deltas, for scripting replies.
func Deltas(text string) []string {
	var out []string
	for _, w := range strings.SplitAfter(text, " ") {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}
