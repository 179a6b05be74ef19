package main

// The streaming floor, for `make bench-stream`: POST
// /v1/conversations/{id}/messages with Accept: text/event-stream does the
// least a streamed chat answer needs. It verifies the bearer token (as
// the read routes do), opens the model's stream (a streamed chat
// completion, the request chat-apiserver sends to the same model), reads
// its SSE lines and, for each token, writes a delta event to the client
// and flushes it; [DONE] becomes a done event.
//
// What it leaves out, all of which chat-apiserver does for each answer:
// the conversation's ownership check, storing the question and the answer
// (and the answer's status, text and usage when it ends), retrieval (the
// question's embedding and the index search, the sources event), the
// prompt's excerpts and history, the user's budget and the replica's
// stream bound, the model's silence bounds, write deadlines and
// heartbeats, a client gone mid-answer, metrics and the access log. So it
// is a lower bound on what a stream costs in Go on this machine (the
// tokens' reads, writes and flushes, the goroutines, the connections),
// not a peer doing the same work: what chat-apiserver spends above it is
// the price of that work and of its framework.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

// modelConns is how many idle connections to the model the floor keeps:
// one host, and enough for every stream at once, so that an answer reuses
// a finished one's connection instead of dialing (chat-apiserver keeps
// CHAT_MAX_STREAMS of them for the same reason).
const modelConns = 1 << 16

// model is the client of the model's streamed chat completions.
type model struct {
	client *http.Client
	url    string // .../chat/completions
	key    string
}

func newModel() model {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = modelConns, modelConns
	return model{client: &http.Client{Transport: t}, url: os.Getenv("OPENAI_BASE_URL") + "/chat/completions",
		key: os.Getenv("OPENAI_API_KEY")}
}

// completionRequest is the body chat-apiserver posts to the model, with no
// excerpts or history in its messages.
type completionRequest struct {
	Model         string              `json:"model"`
	Messages      []completionMessage `json:"messages"`
	Stream        bool                `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type completionMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// completionChunk is what the floor reads of a streamed chunk: each
// choice's text, still JSON-encoded (a JSON string is what the delta event
// carries: it is copied, not decoded and encoded again).
type completionChunk struct {
	Choices []struct {
		Delta struct {
			Content json.RawMessage `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
}

const systemPrompt = "You answer questions about a product using only its documentation. Answer concisely, in Markdown."

// answer streams the model's answer to the question as SSE.
func (s *server) answer(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.user(w, r); !ok {
		return
	}
	var body struct {
		Content string `json:"content"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Content == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "bad_request", "message": "bad body"}})
		return
	}
	req, err := s.model.request(r.Context(), body.Content)
	if err != nil {
		fail(w, err)
		return
	}
	// The stream starts before the model is asked, as chat-apiserver's
	// does (its message_start, once the question is stored): the time to
	// the first byte is the server's, not the model's.
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	out := sse{w: w, rc: http.NewResponseController(w)}
	if !out.event([]byte("event: message_start\ndata: {}\n\n")) {
		return
	}
	resp, err := s.model.client.Do(req)
	if err != nil {
		out.event(errorEvent(err))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		out.event(errorEvent(fmt.Errorf("model: status %d", resp.StatusCode)))
		return
	}
	relay(resp.Body, out)
}

// request is the model's streamed chat completion of the question.
func (m model) request(ctx context.Context, question string) (*http.Request, error) {
	q := completionRequest{Model: "gpt-4o-mini", Stream: true, Messages: []completionMessage{
		{Role: "system", Content: systemPrompt}, {Role: "user", Content: question}}}
	q.StreamOptions.IncludeUsage = true
	b, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+m.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	return req, nil
}

// sse is the client's event stream.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// event writes and flushes one event; false once the client is gone.
func (s sse) event(frame []byte) bool {
	if _, err := s.w.Write(frame); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}

// relay writes a delta event per token of the model's stream, and a done
// event for its [DONE]. It reads to the body's end, past [DONE]: the
// Transport keeps the connection only for a body read to its end.
func relay(model io.Reader, out sse) {
	rd := bufio.NewReader(model)
	var frame []byte
	var chunk completionChunk
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			return
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			out.event([]byte("event: done\ndata: {}\n\n"))
			continue
		}
		chunk.Choices = chunk.Choices[:0]
		if err := json.Unmarshal(data, &chunk); err != nil {
			out.event(errorEvent(err))
			return
		}
		for _, c := range chunk.Choices {
			if t := c.Delta.Content; len(t) <= len(`""`) || t[0] != '"' {
				continue // no text: the role's chunk, the finish, the usage
			}
			frame = append(append(append(frame[:0], "event: delta\ndata: {\"text\":"...), c.Delta.Content...), "}\n\n"...)
			if !out.event(frame) {
				return // the client went away
			}
		}
	}
}

// errorEvent is the error event of a stream that failed once started.
func errorEvent(err error) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": "upstream_error", "message": err.Error()}})
	return fmt.Appendf(nil, "event: error\ndata: %s\n\n", b)
}
