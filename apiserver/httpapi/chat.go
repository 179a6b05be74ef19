package httpapi

// The chat routes: they decode the request, hand the turn to chat.Service
// and render what it reports, as Server-Sent Events or as one JSON body.
//
//	POST /v1/conversations/{id}/messages    {content}   JSON or SSE
//	POST /v1/conversations/{id}/messages/{messageID}/stop
//	POST /v1/conversations/{id}/messages/{messageID}/regenerate   JSON or SSE
//	POST /agents/run                        {question, conversation_id?}  JSON or SSE
//	POST /v1/messages/{id}/feedback         {rating, comment?}

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/chatbackend/chatbackend/apiserver/chat"
	"github.com/chatbackend/chatbackend/apiserver/httperr"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

// DefaultHeartbeat is the interval of SSE heartbeat comments.
const DefaultHeartbeat = 15 * time.Second

// The chat routes' bodies. Their texts' own rules (length, rating values)
// are the chat service's, which answers *chat.InvalidError.
type (
	messageBody struct {
		Content string `json:"content"`
	}
	agentsRunBody struct {
		Question       string `json:"question"`
		ConversationID string `json:"conversation_id"`
	}
	feedbackBody struct {
		Rating  string `json:"rating"`
		Comment string `json:"comment"`
	}
)

func (h *handlers) postMessage(c *gin.Context) {
	var body messageBody
	if !decodeJSON(c, &body, false) || !h.validQuestion(c, body.Content) {
		return
	}
	// The turn spends the token in the transaction that stores the
	// question: one round trip and commit fewer than admit.
	b := routeBudget(c)
	charge := &store.Charge{Budget: b.name, Limit: b.limit}
	h.answer(c, admittedInTurn, func(sink chat.Sink) (chat.Turn, error) {
		return h.chat.Ask(c.Request.Context(), userID(c), c.Param("id"), body.Content, charge, sink)
	})
}

// admittedInTurn admits every request: for a route whose turn spends the
// user's token itself (a refusal is then the turn's error).
func admittedInTurn(*gin.Context) bool { return true }

// regenerate answers again the question of one of the user's answers, as
// a new answer (the old one is kept); it is asked like a message: the
// same budget, the same events or JSON body.
func (h *handlers) regenerate(c *gin.Context) {
	h.answer(c, h.admit, func(sink chat.Sink) (chat.Turn, error) {
		return h.chat.Regenerate(c.Request.Context(), userID(c), c.Param("id"), c.Param("messageID"), sink)
	})
}

// answer runs the turn (run, on the sink it is given) of a message's
// route: streamed as events when the client accepts them (streamAnswer),
// else, once admit lets it through (h.admit: the user's budget), rendered
// as one JSON body.
func (h *handlers) answer(c *gin.Context, admit func(*gin.Context) bool, run func(chat.Sink) (chat.Turn, error)) {
	if wantsSSE(c) {
		h.streamAnswer(c, admit, nil, run)
		return
	}
	if !admit(c) {
		return
	}
	t, err := run(chat.Discard)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, withGrounding(gin.H{
		"conversation_id": t.ConversationID,
		"user_message":    toMessageJSON(t.Question),
		"message":         toMessageJSON(t.Answer),
	}, t))
}

// streamAnswer runs the turn (turn, on the sink it is given) with the
// events sent as they happen, when this replica has room for one more
// stream and the user's budget admits the question. Until the question is
// stored (the stream starts then) errors are ordinary JSON error responses,
// with the fields extra gives (nil: none); afterwards they are an error
// event. admit is answer's.
func (h *handlers) streamAnswer(c *gin.Context, admit func(*gin.Context) bool, extra func(chat.Turn) gin.H, turn func(chat.Sink) (chat.Turn, error)) {
	// A full server refuses before the user's budget is charged.
	if !h.streams.acquire(c) {
		return
	}
	defer h.streams.release()
	if !admit(c) {
		return
	}
	sink := &sseSink{c: c, heartbeat: h.heartbeat, writeTimeout: h.streamWrite}
	// Deferred before the turn runs: should it panic (gin recovers), the
	// stream's heartbeat timer must not go on writing to a finished response.
	defer func() {
		if sink.sse != nil {
			sink.sse.close()
		}
	}()
	t, err := turn(sink)
	if sink.sse == nil {
		if err != nil && extra != nil {
			h.failWith(c, err, extra(t))
		} else if err != nil {
			h.fail(c, err)
		}
		return
	}
	switch {
	case err == nil:
		_ = sink.sse.send(EventDone, withGrounding(gin.H{"message": toMessageJSON(t.Answer)}, t))
	case errors.Is(err, chat.ErrClientGone):
		if sink.sse.stuck() {
			h.log.Warn("chat stream cut: the client stopped reading", "message_id", sink.answerID,
				"write_timeout", h.streamWrite.String())
		}
		c.Abort() // nobody is listening any more
	case errors.Is(err, chat.ErrShuttingDown):
		_ = sink.sse.send(EventError, gin.H{"error": httperr.Detail{Code: httperr.CodeUnavailable, Message: chat.ErrShuttingDown.Error()},
			"message_id": sink.answerID})
	case errors.Is(err, chat.ErrRetrievalFailed), errors.Is(err, chat.ErrModelFailed):
		_ = sink.sse.send(EventError, gin.H{"error": httperr.Detail{Code: httperr.CodeUpstream, Message: publicMessage(err)},
			"message_id": sink.answerID})
	default:
		_ = sink.sse.send(EventError, gin.H{"error": httperr.Detail{Code: httperr.CodeInternal, Message: chat.ErrAnswerNotStored.Error()},
			"message_id": sink.answerID})
	}
}

// stopAnswer stops the user's answer while it streams, on whichever replica
// streams it; the answer keeps the text streamed so far.
func (h *handlers) stopAnswer(c *gin.Context) {
	if !h.admit(c) {
		return
	}
	m, err := h.chat.Stop(c.Request.Context(), userID(c), c.Param("id"), c.Param("messageID"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"message": toMessageJSON(m)})
}

// agentsRun is the route the docs widget calls; with Accept:
// text/event-stream it streams the same events as posting a message
// (message_start carries the conversation's id).
func (h *handlers) agentsRun(c *gin.Context) {
	var body agentsRunBody
	if !decodeJSON(c, &body, false) || !h.validQuestion(c, body.Question) {
		return
	}
	if wantsSSE(c) {
		h.streamAnswer(c, h.admit, func(t chat.Turn) gin.H { return runFailure(body.ConversationID, t) },
			func(sink chat.Sink) (chat.Turn, error) {
				return h.chat.Run(c.Request.Context(), userID(c), body.ConversationID, body.Question, sink)
			})
		return
	}
	if !h.admit(c) {
		return
	}
	t, err := h.chat.Run(c.Request.Context(), userID(c), body.ConversationID, body.Question, chat.Discard)
	if err != nil {
		h.failWith(c, err, runFailure(body.ConversationID, t))
		return
	}
	c.JSON(http.StatusOK, withGrounding(gin.H{
		"conversation_id": t.ConversationID,
		"message_id":      t.Answer.ID,
		"answer":          t.Answer.Content,
		"sources":         t.Sources,
	}, t))
}

// withGrounding adds to an answer's body whether it is grounded and, when
// it is not, why ("reason": not_covered, or no_documents while nothing is
// indexed), so a widget can tell "ask differently" from "come back later".
func withGrounding(body gin.H, t chat.Turn) gin.H {
	body["grounded"] = t.Grounded
	if t.Reason != "" {
		body["reason"] = t.Reason
	}
	return body
}

// runFailure is what a failed /agents/run adds to its error body, so that
// the client can show the turn and retry in the same conversation (a new
// /agents/run with conversation_id) instead of the failure leaving an
// orphan conversation behind: the conversation's id when this call started
// it or stored the question in it, and the failed answer's id when it was
// stored.
func runFailure(requestedConversation string, t chat.Turn) gin.H {
	extra := gin.H{}
	if t.ConversationID != "" && (requestedConversation == "" || t.Question.ID != "") {
		extra["conversation_id"] = t.ConversationID
	}
	if t.Answer.ID != "" {
		extra["message_id"] = t.Answer.ID
	}
	return extra
}

func (h *handlers) feedback(c *gin.Context) {
	var body feedbackBody
	if !decodeJSON(c, &body, false) {
		return
	}
	if err := chat.ValidFeedback(body.Rating, body.Comment); err != nil {
		h.fail(c, err)
		return
	}
	if !h.admit(c) {
		return
	}
	f, err := h.chat.Rate(c.Request.Context(), userID(c), c.Param("id"), body.Rating, body.Comment)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"message_id": f.MessageID, "rating": f.Rating, "comment": f.Comment, "updated_at": f.UpdatedAt.UTC()})
}

// validQuestion answers 400 unless q is a question the chat service takes:
// checked before the user's budget is charged.
func (h *handlers) validQuestion(c *gin.Context, q string) bool {
	if _, err := chat.ValidQuestion(q); err != nil {
		h.fail(c, err)
		return false
	}
	return true
}

// publicMessage is what a client is told about a failed turn: the
// service's sentinel, without the upstream's details (they are logged).
func publicMessage(err error) string {
	for _, e := range []error{chat.ErrRetrievalFailed, chat.ErrModelFailed, chat.ErrClientGone, chat.ErrAnswerNotStored} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "internal error"
}

// sseSink is a chat.Sink that starts the event stream once the question is
// stored and sends each event as it comes.
type sseSink struct {
	c            *gin.Context
	heartbeat    time.Duration
	writeTimeout time.Duration
	sse          *sseWriter
	answerID     string
}

func (s *sseSink) Started(st chat.Started) error {
	s.answerID = st.AnswerID
	s.sse = startSSE(s.c, s.heartbeat, s.writeTimeout)
	return s.sse.send(EventMessageStart, gin.H{
		"conversation_id": st.ConversationID, "user_message_id": st.UserMessageID, "message_id": st.AnswerID,
	})
}

func (s *sseSink) Sources(src []rag.Source) error {
	return s.sse.send(EventSources, gin.H{"sources": src})
}

func (s *sseSink) Delta(text string) error { return s.sse.sendDelta(text) }

// Flush implements chat.Flusher: the deltas go out together once the
// model has nothing more for now (see sseWriter).
func (s *sseSink) Flush() error { return s.sse.Flush() }

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
//
// Each write has writeTimeout (and at most an eighth more, see
// boundWriteLocked) to reach the client's socket: a client that
// stops reading (its socket's buffers full) would otherwise block the
// write, and with it the turn, until the connection dies, whatever the
// request's deadline says. Past it the write fails, the client counts as
// gone, and the turn stores its answer as incomplete. Memory stays bounded
// either way: a write blocks rather than buffers.
//
// Deltas are written to the response's buffer and sent by Flush, which
// the turn calls whenever the model's answer has nothing more for it yet
// (generate.Request.Waiting): a delta alone goes out before the turn's
// goroutine waits for the model's next token, and deltas that were read
// together (the server was behind the model) go out together in one
// write. Why not a write and flush per delta: with thousands of streams on
// a busy machine, the queued tokens would cost a syscall each (make
// bench-stream). Why not a goroutine of the writer's that the first
// unflushed delta wakes to flush (as before): that was one more wake-up
// and goroutine switch per token of every stream, and a delta's latency
// then included the scheduler's wait for that goroutine.
type sseWriter struct {
	mu sync.Mutex
	w  gin.ResponseWriter
	// rc controls the connection under gin's writer: gin's Flush drops
	// the error a flush that ran out of time returns.
	rc           *http.ResponseController
	writeTimeout time.Duration
	deadline     time.Time // the connection's write deadline (boundWriteLocked)
	err          error     // first write error: the client is gone
	// frame holds the delta being written and enc encodes its text (the
	// string text points to: a pointer, which Encode takes without
	// allocating) into it: reused, so a delta allocates nothing of its own.
	frame bytes.Buffer
	enc   *json.Encoder
	text  string
	// unflushed: deltas are in the buffer, for Flush to send.
	unflushed bool
	// beat sends the heartbeat comments every interval (see heartbeat);
	// closed: close ran, and no heartbeat may write any more.
	beat     *time.Timer
	interval time.Duration
	closed   bool
}

func startSSE(c *gin.Context, heartbeat, writeTimeout time.Duration) *sseWriter {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	// nginx (ingress) buffers responses unless told not to.
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	var under http.ResponseWriter = c.Writer
	if u, ok := under.(interface{ Unwrap() http.ResponseWriter }); ok {
		under = u.Unwrap()
	}
	s := &sseWriter{w: c.Writer, rc: http.NewResponseController(under), writeTimeout: writeTimeout, interval: heartbeat}
	s.enc = json.NewEncoder(&s.frame)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.boundWriteLocked()
	c.Writer.WriteHeaderNow()
	s.flushLocked()
	s.beat = time.AfterFunc(heartbeat, s.heartbeat)
	return s
}

// heartbeat writes a heartbeat comment, with any deltas before it, and
// arms the next one. Why a timer rather than a goroutine with a ticker per
// stream (as before): the timer's function runs only when it fires, so an
// open stream keeps no goroutine (and its stack) of its own waiting for
// its heartbeats.
func (s *sseWriter) heartbeat() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.err != nil {
		return
	}
	s.boundWriteLocked()
	if _, s.err = fmt.Fprint(s.w, ": heartbeat\n\n"); s.err == nil {
		s.flushLocked()
		s.unflushed = false
	}
	s.beat.Reset(s.interval)
}

// boundWriteLocked gives the next write and flush at least writeTimeout,
// and at most writeTimeout plus a slack of an eighth of it, to reach the
// client. Why not exactly writeTimeout from now: setting the connection's
// deadline is a timer update, and setting it for every delta of every
// stream was a cost of its own (make bench-stream); the deadline is moved
// only once it is nearer than writeTimeout, at most once per slack. A
// writer without deadlines (none in production) stays unbounded.
func (s *sseWriter) boundWriteLocked() {
	if s.writeTimeout <= 0 {
		return
	}
	now := time.Now()
	if s.deadline.Sub(now) >= s.writeTimeout {
		return
	}
	s.deadline = now.Add(s.writeTimeout + s.writeTimeout/8)
	_ = s.rc.SetWriteDeadline(s.deadline)
}

// flushLocked sends what is buffered; a flush that fails (ran out of time)
// means the client is gone.
func (s *sseWriter) flushLocked() {
	defer func() {
		// Flushing a connection the client closed can panic in some
		// writers; treat it as the client being gone.
		if r := recover(); r != nil && s.err == nil {
			s.err = fmt.Errorf("flush: %v", r)
		}
	}()
	if err := s.rc.Flush(); err != nil && s.err == nil {
		s.err = fmt.Errorf("flush: %w", err)
	}
}

// send writes one event and flushes it, with any deltas before it; it
// returns an error once the client is gone.
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
	s.boundWriteLocked()
	if _, s.err = fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, b); s.err == nil {
		s.flushLocked()
		s.unflushed = false
	}
	return s.err
}

// A delta event's frame around its JSON-encoded text.
const (
	deltaFramePrefix = "event: " + EventDelta + "\ndata: {\"text\":"
	deltaFrameSuffix = "}\n\n"
)

// sendDelta writes a delta event, {"text": text}, to the response's
// buffer, for Flush (or the next event) to send; it returns an error once
// the client is gone (a failed flush shows at the next delta).
func (s *sseWriter) sendDelta(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	// Only the text is encoded (as json.Marshal does): the event's frame
	// is constant.
	s.frame.Reset()
	s.frame.WriteString(deltaFramePrefix)
	s.text = text
	err := s.enc.Encode(&s.text)
	s.text = ""
	if err != nil {
		return fmt.Errorf("encode %s event: %w", EventDelta, err)
	}
	s.frame.Truncate(s.frame.Len() - 1) // the newline Encode ends with
	s.frame.WriteString(deltaFrameSuffix)
	s.boundWriteLocked()
	if _, s.err = s.w.Write(s.frame.Bytes()); s.err != nil {
		return s.err
	}
	s.unflushed = true
	return nil
}

// Flush sends the deltas written since the last flush, if any; it returns
// an error once the client is gone.
func (s *sseWriter) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unflushed && s.err == nil {
		s.boundWriteLocked()
		s.flushLocked()
	}
	s.unflushed = false
	return s.err
}

// stuck reports whether a write ran out of time: the client is connected
// but stopped reading.
func (s *sseWriter) stuck() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Is(s.err, os.ErrDeadlineExceeded)
}

// close stops the heartbeat and lifts the write deadline (the connection
// may serve another request); no event may follow.
func (s *sseWriter) close() {
	s.mu.Lock()
	s.closed = true
	s.beat.Stop()
	if s.unflushed && s.err == nil {
		// Deltas not followed by an event (none follows when the client
		// went away): still theirs to read if they can.
		s.boundWriteLocked()
		s.flushLocked()
	}
	s.mu.Unlock()
	if s.writeTimeout > 0 {
		_ = s.rc.SetWriteDeadline(time.Time{})
	}
}
