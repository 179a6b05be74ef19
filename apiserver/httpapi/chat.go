package httpapi

// The RAG chat routes (owned by the rag engineer), added through
// Deps.Register:
//
//	POST /agents/run                        {question, conversation_id?}
//	POST /v1/conversations/{id}/messages    {content}   JSON or SSE
//	POST /v1/messages/{id}/feedback         {rating, comment?}

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/chatbackend/chatbackend/apiserver/httperr"
	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/chatstore"
	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

// ChatOptions configure the chat routes.
type ChatOptions struct {
	Store  *store.Store
	Engine *rag.Engine
	Logger *slog.Logger
	// RatePerMinute and Burst limit each user's chat requests
	// (default 20 per minute, bursts of 5). Feedback is not limited.
	RatePerMinute float64
	Burst         int
	// Heartbeat is the interval of SSE heartbeat comments (default 15s).
	Heartbeat time.Duration
	// HistoryMessages is how many earlier messages are candidates for the
	// model's context (the generator trims them to its token budget).
	HistoryMessages int
	// MaxQuestionChars bounds a question (default 4000 characters).
	MaxQuestionChars int
}

// Defaults of ChatOptions.
const (
	DefaultChatRatePerMinute = 20
	DefaultChatBurst         = 5
	DefaultHeartbeat         = 15 * time.Second
)

// maxCommentChars matches the message_feedback.comment check.
const maxCommentChars = 2000

// saveTimeout bounds storing an answer after the request context ended (the
// client left): the answer is still recorded, as incomplete.
const saveTimeout = 10 * time.Second

type chat struct {
	o       ChatOptions
	store   *store.Store
	chats   *chatstore.Store
	engine  *rag.Engine
	log     *slog.Logger
	limiter *userLimiter
}

// ChatRoutes returns the Deps.Register hook that adds the chat routes.
func ChatRoutes(o ChatOptions) func(Groups) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RatePerMinute <= 0 {
		o.RatePerMinute = DefaultChatRatePerMinute
	}
	if o.Burst <= 0 {
		o.Burst = DefaultChatBurst
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.HistoryMessages <= 0 {
		o.HistoryMessages = 20
	}
	if o.MaxQuestionChars <= 0 {
		o.MaxQuestionChars = 4000
	}
	h := &chat{
		o: o, store: o.Store, chats: chatstore.New(o.Store.Pool()), engine: o.Engine, log: o.Logger,
		limiter: newUserLimiter(rate.Limit(o.RatePerMinute/60), o.Burst),
	}
	return func(g Groups) {
		g.Agents.POST("/run", h.rateLimit, h.agentsRun)
		g.V1.POST("/conversations/:id/messages", h.rateLimit, h.postMessage)
		g.V1.POST("/messages/:id/feedback", h.feedback)
	}
}

// userLimiter is a token bucket per user. Idle buckets (full again) are
// dropped now and then, so memory follows the active users only.
type userLimiter struct {
	mu        sync.Mutex
	limit     rate.Limit
	burst     int
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

func newUserLimiter(limit rate.Limit, burst int) *userLimiter {
	return &userLimiter{limit: limit, burst: burst, buckets: map[string]*rate.Limiter{}, lastSweep: time.Now()}
}

// allow takes a token for user, or says how long until one is available.
func (u *userLimiter) allow(user string, now time.Time) (bool, time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if now.Sub(u.lastSweep) > time.Minute {
		for id, l := range u.buckets {
			if l.TokensAt(now) >= float64(u.burst) {
				delete(u.buckets, id)
			}
		}
		u.lastSweep = now
	}
	l, ok := u.buckets[user]
	if !ok {
		l = rate.NewLimiter(u.limit, u.burst)
		u.buckets[user] = l
	}
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (h *chat) rateLimit(c *gin.Context) {
	ok, wait := h.limiter.allow(UserID(c), time.Now())
	if ok {
		c.Next()
		return
	}
	secs := int(math.Ceil(wait.Seconds()))
	c.Header("Retry-After", strconv.Itoa(max(secs, 1)))
	httperr.Abort(c, http.StatusTooManyRequests, httperr.CodeRateLimited,
		fmt.Sprintf("too many chat requests; retry in %d s", max(secs, 1)))
}

// question validates and trims a question; on failure it has answered 400.
func (h *chat) question(c *gin.Context, q string) (string, bool) {
	q = strings.TrimSpace(q)
	switch {
	case q == "":
		httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest, "the question is empty")
		return "", false
	case utf8.RuneCountInString(q) > h.o.MaxQuestionChars:
		httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest,
			fmt.Sprintf("the question is longer than %d characters", h.o.MaxQuestionChars))
		return "", false
	}
	return q, true
}

type usageJSON struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// answerJSON is an assistant message with what the chat records about it.
type answerJSON struct {
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id"`
	Role           string          `json:"role"`
	Content        string          `json:"content"`
	Sources        json.RawMessage `json:"sources"`
	AgentType      string          `json:"agent_type"`
	Status         string          `json:"status"`
	Model          string          `json:"model"`
	Usage          usageJSON       `json:"usage"`
	CreatedAt      time.Time       `json:"created_at"`
}

func toAnswerJSON(m chatstore.Message) answerJSON {
	src := m.Sources
	if len(src) == 0 {
		src = json.RawMessage("[]")
	}
	return answerJSON{
		ID: m.ID, ConversationID: m.ConversationID, Role: m.Role, Content: m.Content, Sources: src,
		AgentType: m.AgentType, Status: m.Status, Model: m.Model, CreatedAt: m.CreatedAt.UTC(),
		Usage: usageJSON{PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens,
			TotalTokens: m.PromptTokens + m.CompletionTokens},
	}
}

// turn is one answered question.
type turn struct {
	conversationID string
	user           store.Message
	answer         chatstore.Message
	sources        []rag.Source
}

// converse runs the pipeline: store the question, retrieve, generate, store
// the answer. With sse set it streams the events and finishes the response
// itself; otherwise it returns the turn for the caller to render, or false
// once it has answered with an error.
func (h *chat) converse(c *gin.Context, userID, conversationID, question string, stream bool) (turn, bool) {
	ctx := c.Request.Context()
	t := turn{conversationID: conversationID}
	history, err := h.chats.History(ctx, userID, conversationID, h.o.HistoryMessages)
	if err != nil {
		StoreError(c, h.log, err)
		return t, false
	}
	// The question is stored before anything can fail upstream: it is never lost.
	msgs, err := h.store.AddMessages(ctx, userID, conversationID, store.NewMessage{Role: store.RoleUser, Content: question})
	if err != nil {
		StoreError(c, h.log, err)
		return t, false
	}
	t.user = msgs[0]
	answerID := uuid.NewString()

	var sse *sseWriter
	if stream {
		sse = startSSE(c, h.o.Heartbeat)
		defer sse.close()
		_ = sse.send(EventMessageStart, gin.H{
			"conversation_id": conversationID, "user_message_id": t.user.ID, "message_id": answerID,
		})
	}

	retrieved, retrErr := h.engine.Retrieve(ctx, question)
	t.sources = retrieved.Sources
	if t.sources == nil {
		t.sources = []rag.Source{}
	}
	var res generate.Result
	var genErr error
	if retrErr == nil {
		if stream {
			_ = sse.send(EventSources, gin.H{"sources": t.sources})
		}
		turns := make([]generate.Turn, len(history))
		for i, m := range history {
			turns[i] = generate.Turn{Role: m.Role, Content: m.Content}
		}
		res, genErr = h.engine.Generator.Generate(ctx, generate.Request{
			Question: question, History: turns, Passages: retrieved.Passages,
		}, func(d string) error {
			if stream {
				return sse.send(EventDelta, gin.H{"text": d})
			}
			return nil
		})
	}

	status := chatstore.StatusComplete
	clientGone := ctx.Err() != nil || (stream && sse.err != nil)
	switch {
	case (retrErr != nil || genErr != nil) && clientGone:
		status = chatstore.StatusIncomplete
	case retrErr != nil || genErr != nil:
		status = chatstore.StatusFailed
		h.log.Warn("chat answer failed", "conversation_id", conversationID, "message_id", answerID,
			"error", errors.Join(retrErr, genErr).Error())
	}
	sources, _ := json.Marshal(t.sources)
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	t.answer, err = h.chats.AddAnswer(saveCtx, userID, conversationID, chatstore.Answer{
		ID: answerID, Content: res.Text, Sources: sources, AgentType: h.engine.Generator.AgentType(),
		Status: status, Model: res.Model, PromptTokens: res.Usage.PromptTokens, CompletionTokens: res.Usage.CompletionTokens,
	})
	if err != nil {
		h.log.Error("store chat answer", "conversation_id", conversationID, "error", err.Error())
		if stream {
			_ = sse.send(EventError, gin.H{"error": httperr.Detail{Code: httperr.CodeInternal, Message: "the answer could not be stored"}, "message_id": answerID})
			return t, false
		}
		StoreError(c, h.log, err)
		return t, false
	}
	switch status {
	case chatstore.StatusIncomplete:
		c.Abort() // nobody is listening any more
		return t, false
	case chatstore.StatusFailed:
		msg := "the language model failed; the answer is incomplete"
		if retrErr != nil {
			msg = "the documentation could not be searched"
		}
		if stream {
			_ = sse.send(EventError, gin.H{"error": httperr.Detail{Code: httperr.CodeUpstream, Message: msg}, "message_id": answerID})
			return t, false
		}
		httperr.Abort(c, http.StatusBadGateway, httperr.CodeUpstream, msg)
		return t, false
	}
	if stream {
		_ = sse.send(EventDone, gin.H{"message": toAnswerJSON(t.answer)})
		return t, false
	}
	return t, true
}

func (h *chat) postMessage(c *gin.Context) {
	var body struct {
		Content string `json:"content"`
	}
	if !DecodeJSON(c, &body, false) {
		return
	}
	q, ok := h.question(c, body.Content)
	if !ok {
		return
	}
	t, ok := h.converse(c, UserID(c), c.Param("id"), q, wantsSSE(c))
	if !ok {
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"conversation_id": t.conversationID,
		"user_message":    ToMessageJSON(t.user),
		"message":         toAnswerJSON(t.answer),
	})
}

// agentsRun is the route the docs widget calls.
func (h *chat) agentsRun(c *gin.Context) {
	var body struct {
		Question       string `json:"question"`
		ConversationID string `json:"conversation_id"`
	}
	if !DecodeJSON(c, &body, false) {
		return
	}
	q, ok := h.question(c, body.Question)
	if !ok {
		return
	}
	userID := UserID(c)
	convID := body.ConversationID
	if convID == "" {
		conv, err := h.store.CreateConversation(c.Request.Context(), userID, titleFrom(q))
		if err != nil {
			StoreError(c, h.log, err)
			return
		}
		convID = conv.ID
	}
	t, ok := h.converse(c, userID, convID, q, false)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"conversation_id": t.conversationID,
		"message_id":      t.answer.ID,
		"answer":          t.answer.Content,
		"sources":         t.sources,
	})
}

// titleFrom makes a conversation title of the question's first words.
func titleFrom(q string) string { return rag.Snippet(q, 80) }

func (h *chat) feedback(c *gin.Context) {
	var body struct {
		Rating  string `json:"rating"`
		Comment string `json:"comment"`
	}
	if !DecodeJSON(c, &body, false) {
		return
	}
	if body.Rating != "up" && body.Rating != "down" {
		httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest, `rating must be "up" or "down"`)
		return
	}
	if utf8.RuneCountInString(body.Comment) > maxCommentChars {
		httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest,
			fmt.Sprintf("comment is longer than %d characters", maxCommentChars))
		return
	}
	f, err := h.chats.SetFeedback(c.Request.Context(), UserID(c), c.Param("id"), body.Rating, body.Comment)
	if errors.Is(err, chatstore.ErrNotAnswer) {
		httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest, err.Error())
		return
	}
	if err != nil {
		StoreError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, f)
}
