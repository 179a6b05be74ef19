package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/chatbackend/chatbackend/apiserver/httperr"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

type handlers struct {
	store *store.Store
	auth  Authenticator
	log   *slog.Logger
	users *userCache
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

type messageJSON struct {
	ID        string    `json:"id"`
	Role      string    `json:"role"`
	Content   string    `json:"content"`
	Sources   any       `json:"sources"`
	AgentType string    `json:"agent_type"`
	CreatedAt time.Time `json:"created_at"`
}

// ToMessageJSON is the wire shape of a message, shared with the chat handlers.
func ToMessageJSON(m store.Message) any {
	var sources any = []any{}
	if len(m.Sources) > 0 {
		sources = m.Sources
	}
	return messageJSON{ID: m.ID, Role: m.Role, Content: m.Content, Sources: sources, AgentType: m.AgentType, CreatedAt: m.CreatedAt.UTC()}
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
	u, err := h.store.GetUser(c.Request.Context(), UserID(c))
	if err != nil {
		StoreError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": u.ID, "email": u.Email, "name": u.Name})
}

type titleBody struct {
	Title *string `json:"title"`
}

func validTitle(c *gin.Context, t string) bool {
	if n := utf8.RuneCountInString(t); n > store.MaxTitleLen {
		httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest,
			fmt.Sprintf("title has %d characters, at most %d are allowed", n, store.MaxTitleLen))
		return false
	}
	return true
}

func (h *handlers) createConversation(c *gin.Context) {
	var body titleBody
	if !DecodeJSON(c, &body, true) {
		return
	}
	title := ""
	if body.Title != nil {
		title = *body.Title
	}
	if !validTitle(c, title) {
		return
	}
	conv, err := h.store.CreateConversation(c.Request.Context(), UserID(c), title)
	if err != nil {
		StoreError(c, h.log, err)
		return
	}
	c.JSON(http.StatusCreated, toConversationJSON(conv))
}

func (h *handlers) listConversations(c *gin.Context) {
	limit, ok := pageLimit(c)
	if !ok {
		return
	}
	page, err := h.store.ListConversations(c.Request.Context(), UserID(c), limit, c.Query("cursor"))
	if err != nil {
		StoreError(c, h.log, err)
		return
	}
	items := make([]conversationJSON, 0, len(page.Items))
	for _, conv := range page.Items {
		items = append(items, toConversationJSON(conv))
	}
	c.JSON(http.StatusOK, newList(items, page.NextCursor))
}

func (h *handlers) getConversation(c *gin.Context) {
	conv, err := h.store.GetConversation(c.Request.Context(), UserID(c), c.Param("id"))
	if err != nil {
		StoreError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, toConversationJSON(conv))
}

func (h *handlers) renameConversation(c *gin.Context) {
	var body titleBody
	if !DecodeJSON(c, &body, false) {
		return
	}
	if body.Title == nil {
		httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest, `field "title" is required`)
		return
	}
	if !validTitle(c, *body.Title) {
		return
	}
	conv, err := h.store.RenameConversation(c.Request.Context(), UserID(c), c.Param("id"), *body.Title)
	if err != nil {
		StoreError(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, toConversationJSON(conv))
}

func (h *handlers) deleteConversation(c *gin.Context) {
	if err := h.store.DeleteConversation(c.Request.Context(), UserID(c), c.Param("id")); err != nil {
		StoreError(c, h.log, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *handlers) listMessages(c *gin.Context) {
	limit, ok := pageLimit(c)
	if !ok {
		return
	}
	page, err := h.store.ListMessages(c.Request.Context(), UserID(c), c.Param("id"), limit, c.Query("cursor"))
	if err != nil {
		StoreError(c, h.log, err)
		return
	}
	items := make([]any, 0, len(page.Items))
	for _, m := range page.Items {
		items = append(items, ToMessageJSON(m))
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

// StoreError answers a store error: not found → 404 (whether missing,
// deleted or another user's), bad cursor or input → 400, else 500 (logged,
// not shown).
func StoreError(c *gin.Context, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		httperr.Abort(c, http.StatusNotFound, httperr.CodeNotFound, "not found")
	case errors.Is(err, store.ErrBadCursor):
		httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest, "invalid cursor")
	case errors.Is(err, store.ErrInvalid):
		httperr.Abort(c, http.StatusBadRequest, httperr.CodeBadRequest, err.Error())
	case errors.Is(err, c.Request.Context().Err()) && c.Request.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		c.Abort()
	default:
		log.Error("request failed", "route", route(c), "error", err.Error())
		httperr.Abort(c, http.StatusInternalServerError, httperr.CodeInternal, "internal error")
	}
}
