package generate

// The answer's stream: the streamed chat completion's request, and its
// server-sent events read line by line. Why not the client's
// CreateChatCompletionStream and RecvRaw: its line reader copies each line
// and runs three regular expressions on it (7% of the server's CPU at 250
// streams, make bench-stream -profile, where the floor's reader does
// neither), it closes the body at [DONE] without reading its end (the
// Transport then drops the connection: a new one to the model for every
// answer), and it hides how much of the body it holds, which
// Request.Waiting needs. The request's body and the errors of a failed
// status are the client's types, as before.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	openai "github.com/sashabaranov/go-openai"
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

// sseReader reads the data of a stream's events, one data line each (the
// service writes each chunk on one line).
type sseReader struct {
	rd *bufio.Reader
	// long puts together a line longer than rd's buffer.
	long    []byte
	waiting func()
}

func newSSEReader(body io.Reader, waiting func()) *sseReader {
	return &sseReader{rd: bufio.NewReader(body), waiting: waiting}
}

// next is the data of the next data line, spaces trimmed: a JSON chunk or
// [DONE]; io.EOF when the body ends. Other lines (the blank line after
// each event, comments, other fields) are skipped. waiting is called
// before each read that waits for the model: when no whole line is held.
func (s *sseReader) next() ([]byte, error) {
	for {
		if s.waiting != nil && bytes.IndexByte(s.held(), '\n') < 0 {
			s.waiting()
		}
		line, err := s.line()
		if err != nil {
			return nil, err
		}
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			return bytes.TrimSpace(data), nil
		}
	}
}

// held is what rd holds, unread.
func (s *sseReader) held() []byte {
	b, _ := s.rd.Peek(s.rd.Buffered()) // never more than it holds: no read, no error
	return b
}

// maxLine bounds a line of the stream: a chunk is one token's, far
// below it, and a service that never ends its line must not grow the
// server's memory until the silence bound cuts it.
const maxLine = 1 << 20

// line is the next line, up to maxLine long; a last line without its
// newline is the body's end (io.EOF), as a cut one.
func (s *sseReader) line() ([]byte, error) {
	line, err := s.rd.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	s.long = append(s.long[:0], line...)
	for {
		line, err = s.rd.ReadSlice('\n')
		s.long = append(s.long, line...)
		if len(s.long) > maxLine {
			return nil, fmt.Errorf("a line of the stream is longer than %d bytes", maxLine)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return s.long, err
		}
	}
}

// drainTimeout bounds the wait for the body's end after [DONE].
const drainTimeout = time.Second

// drain reads the body to its end after [DONE], for the Transport to keep
// the connection for the next answer (it drops one whose body was closed
// before its end); a service that does not end it within drainTimeout is
// cut off (cancel: the request's), its connection not kept.
func (s *sseReader) drain(cancel context.CancelCauseFunc) {
	t := time.AfterFunc(drainTimeout, func() { cancel(errors.New("the stream did not end after [DONE]")) })
	defer t.Stop()
	_, _ = io.Copy(io.Discard, s.rd)
}
