package httpapi

// Server-sent events of the RAG chat (owned by the rag engineer).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// SSE event names of POST /v1/conversations/{id}/messages with
// Accept: text/event-stream, in the order they are sent:
// message_start, sources, delta..., then done or error.
const (
	EventMessageStart = "message_start"
	EventSources      = "sources"
	EventDelta        = "delta"
	EventDone         = "done"
	EventError        = "error"
)

func wantsSSE(c *gin.Context) bool {
	return strings.Contains(c.GetHeader("Accept"), "text/event-stream")
}

// sseWriter serialises events and heartbeat comments on one response. The
// heartbeat keeps proxies and load balancers from closing a stream during
// a long retrieval or a slow model.
type sseWriter struct {
	mu      sync.Mutex
	w       gin.ResponseWriter
	flusher http.Flusher
	err     error // first write error: the client is gone
	stop    chan struct{}
	stopped sync.WaitGroup
}

func startSSE(c *gin.Context, heartbeat time.Duration) *sseWriter {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	// nginx (ingress) buffers responses unless told not to.
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	s := &sseWriter{w: c.Writer, flusher: c.Writer, stop: make(chan struct{})}
	s.mu.Lock()
	c.Writer.WriteHeaderNow()
	s.flushLocked()
	s.mu.Unlock()
	s.stopped.Add(1)
	go func() {
		defer s.stopped.Done()
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.mu.Lock()
				if s.err == nil {
					_, s.err = fmt.Fprint(s.w, ": heartbeat\n\n")
					s.flushLocked()
				}
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *sseWriter) flushLocked() {
	defer func() {
		// Flushing a connection the client closed can panic in some
		// writers; treat it as the client being gone.
		if r := recover(); r != nil && s.err == nil {
			s.err = fmt.Errorf("flush: %v", r)
		}
	}()
	s.flusher.Flush()
}

// send writes one event; it returns an error once the client is gone.
func (s *sseWriter) send(event string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", event, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if _, s.err = fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, b); s.err == nil {
		s.flushLocked()
	}
	return s.err
}

// close stops the heartbeat; no event may follow.
func (s *sseWriter) close() {
	close(s.stop)
	s.stopped.Wait()
}
