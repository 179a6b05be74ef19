package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/chatbackend/chatbackend/apiserver/chat"
	"github.com/chatbackend/chatbackend/apiserver/dependency"
	"github.com/chatbackend/chatbackend/apiserver/httperr"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

type handlers struct {
	store     *store.Store
	chat      *chat.Service
	auth      Authenticator
	log       *slog.Logger
	users     *userCache
	heartbeat time.Duration
	// streamWrite bounds each write of a streamed answer (zero: none).
	streamWrite time.Duration
	stopping    <-chan struct{}
	deps        *dependency.Gauges
	streams     streamSlots
	// schemaBehind: /readyz last found the schema older than this binary's
	// (logged once per change).
	schemaBehind atomic.Bool
}

type conversationJSON struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toConversationJSON(c store.Conversation) conversationJSON {
	return conversationJSON{ID: c.ID, Title: c.Title, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
}

type usageJSON struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

// messageJSON is the one wire shape of a message (openapi.yaml's Message),
// in listings and in the chat's answers alike: a reloaded page sees how an
// answer ended exactly as the client that asked did.
type messageJSON struct {
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

func toMessageJSON(m store.Message) messageJSON {
	sources := m.Sources
	if len(sources) == 0 {
		sources = json.RawMessage("[]")
	}
	return messageJSON{
		ID: m.ID, ConversationID: m.ConversationID, Role: m.Role, Content: m.Content, Sources: sources,
		AgentType: m.AgentType, Status: m.Status, Model: m.Model, CreatedAt: m.CreatedAt.UTC(),
		Usage: usageJSON{PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens,
			TotalTokens: m.PromptTokens + m.CompletionTokens},
	}
}

type listJSON[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func newList[T any](items []T, next string) listJSON[T] {
	l := listJSON[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	if next != "" {
		l.NextCursor = &next
	}
	return l
}

func (h *handlers) me(c *gin.Context) {
	u, err := h.store.GetUser(c.Request.Context(), userID(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": u.ID, "email": u.Email, "name": u.Name})
}

// createConversationBody is POST /v1/conversations: the title is optional.
type createConversationBody struct {
	Title *string `json:"title"`
}

func (b *createConversationBody) validate() error {
	if b.Title == nil {
		return nil
	}
	return checkTitle(*b.Title)
}

// renameBody is PATCH /v1/conversations/{id}: the title is required.
type renameBody struct {
	Title *string `json:"title"`
}

func (b *renameBody) validate() error {
	if b.Title == nil {
		return invalidf(`field "title" is required`)
	}
	return checkTitle(*b.Title)
}

func checkTitle(t string) error {
	if n := utf8.RuneCountInString(t); n > store.MaxTitleLen {
		return invalidf("title has %d characters, at most %d are allowed", n, store.MaxTitleLen)
	}
	return nil
}

func (h *handlers) createConversation(c *gin.Context) {
	var body createConversationBody
	if !decodeJSON(c, &body, true) {
		return
	}
	title := ""
	if body.Title != nil {
		title = *body.Title
	}
	b := routeBudget(c)
	conv, err := h.store.CreateConversationLimited(c.Request.Context(), userID(c), title, b.name, b.limit)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, toConversationJSON(conv))
}

func (h *handlers) listConversations(c *gin.Context) {
	limit, ok := pageLimit(c)
	if !ok {
		return
	}
	page, err := h.store.ListConversations(c.Request.Context(), userID(c), limit, c.Query("cursor"))
	if err != nil {
		h.fail(c, err)
		return
	}
	items := make([]conversationJSON, 0, len(page.Items))
	for _, conv := range page.Items {
		items = append(items, toConversationJSON(conv))
	}
	c.JSON(http.StatusOK, newList(items, page.NextCursor))
}

func (h *handlers) getConversation(c *gin.Context) {
	conv, err := h.store.GetConversation(c.Request.Context(), userID(c), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toConversationJSON(conv))
}

func (h *handlers) renameConversation(c *gin.Context) {
	var body renameBody
	if !decodeJSON(c, &body, false) {
		return
	}
	if !h.admit(c) {
		return
	}
	conv, err := h.store.RenameConversation(c.Request.Context(), userID(c), c.Param("id"), *body.Title)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toConversationJSON(conv))
}

func (h *handlers) deleteConversation(c *gin.Context) {
	if !h.admit(c) {
		return
	}
	if err := h.store.DeleteConversation(c.Request.Context(), userID(c), c.Param("id")); err != nil {
		h.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *handlers) listMessages(c *gin.Context) {
	limit, ok := pageLimit(c)
	if !ok {
		return
	}
	page, err := h.store.ListMessages(c.Request.Context(), userID(c), c.Param("id"), limit, c.Query("cursor"))
	if err != nil {
		h.fail(c, err)
		return
	}
	items := make([]messageJSON, 0, len(page.Items))
	for _, m := range page.Items {
		items = append(items, toMessageJSON(m))
	}
	c.JSON(http.StatusOK, newList(items, page.NextCursor))
}

// pageLimit reads ?limit=: absent → the default, above the maximum → the
// maximum, not a positive integer → 400.
func pageLimit(c *gin.Context) (int, bool) {
	v, ok := c.GetQuery("limit")
	if !ok || v == "" {
		return store.DefaultLimit, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest, "limit must be a positive integer")
		return 0, false
	}
	return min(n, store.MaxLimit), true
}

// RetryAfterUnavailable is the Retry-After, in seconds, of a 503 answered
// because the database cannot be reached.
const RetryAfterUnavailable = 5

// fail answers the error of a store or chat call (see classify) with the
// error body. A client that went away gets nothing.
func (h *handlers) fail(c *gin.Context, err error) { h.failWith(c, err, nil) }

// failWith is fail with extra fields next to "error" in the body.
func (h *handlers) failWith(c *gin.Context, err error, extra gin.H) {
	status, detail, retryAfter, ok := h.classify(c, err)
	if !ok {
		c.Abort() // nobody reads the answer
		return
	}
	if retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(retryAfter))
	}
	if len(extra) == 0 {
		c.AbortWithStatusJSON(status, httperr.Body{Error: detail})
		return
	}
	body := gin.H{"error": detail}
	maps.Copy(body, extra)
	c.AbortWithStatusJSON(status, body)
}

// classify is the one mapping of errors to responses: not found → 404
// (whether missing, deleted or another user's), refused input → 400, a
// deactivated user → 403, a spent budget → 429 (retryAfter: until its
// next token), a failed model or retrieval → 502, a database
// that cannot be reached or did not answer in time → 503 (retryAfter:
// RetryAfterUnavailable), else 500 (logged, not shown). retryAfter is the
// Retry-After in seconds, 0 for none. ok is false when the client went
// away: nobody reads an answer.
func (h *handlers) classify(c *gin.Context, err error) (status int, detail httperr.Detail, retryAfter int, ok bool) {
	var invalid *chat.InvalidError
	var limited *store.RateLimitedError
	reqCtx := c.Request.Context()
	d := func(code, message string) httperr.Detail { return httperr.Detail{Code: code, Message: message} }
	switch {
	case errors.Is(err, chat.ErrClientGone),
		errors.Is(reqCtx.Err(), context.Canceled) && errors.Is(err, context.Canceled):
		return 0, httperr.Detail{}, 0, false
	case errors.As(err, &invalid):
		return http.StatusBadRequest, d(httperr.CodeBadRequest, invalid.Message), 0, true
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, d(httperr.CodeNotFound, "not found"), 0, true
	case errors.Is(err, store.ErrBadCursor):
		return http.StatusBadRequest, d(httperr.CodeBadRequest, "invalid cursor"), 0, true
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrNotAnswer):
		return http.StatusBadRequest, d(httperr.CodeBadRequest, err.Error()), 0, true
	case errors.Is(err, store.ErrFinished), errors.Is(err, store.ErrStreaming):
		return http.StatusConflict, d(httperr.CodeConflict, err.Error()), 0, true
	case errors.As(err, &limited):
		return http.StatusTooManyRequests, d(httperr.CodeRateLimited, limited.Error()), limited.RetryAfter(), true
	case errors.Is(err, store.ErrUserInactive):
		return http.StatusForbidden, d(httperr.CodeUserInactive, store.ErrUserInactive.Error()), 0, true
	case errors.Is(err, chat.ErrShuttingDown):
		return http.StatusServiceUnavailable, d(httperr.CodeUnavailable, chat.ErrShuttingDown.Error()), RetryAfterUnavailable, true
	case errors.Is(err, chat.ErrRetrievalFailed), errors.Is(err, chat.ErrModelFailed):
		return http.StatusBadGateway, d(httperr.CodeUpstream, publicMessage(err)), 0, true
	case store.IsUserMissing(err):
		// Removed while this replica trusted it to exist (syncUser): the
		// retry writes it again.
		h.users.forget(userID(c))
		return http.StatusServiceUnavailable, d(httperr.CodeUnavailable, "the user's record was being re-created; retry"), RetryAfterUnavailable, true
	case store.IsUnavailable(err):
		h.log.Warn("database unreachable", "route", route(c), "error", err.Error())
		return http.StatusServiceUnavailable, d(httperr.CodeUnavailable, "the database is not reachable; retry shortly"), RetryAfterUnavailable, true
	default:
		h.log.Error("request failed", "route", route(c), "error", err.Error())
		return http.StatusInternalServerError, d(httperr.CodeInternal, "internal error"), 0, true
	}
}
