// Package chatstore holds the chat's own queries on top of the core store's
// schema: assistant answers with their status, model and token usage, the
// history sent to the model, and feedback. Like the core store, every query
// is scoped to the authenticated user, and another user's rows are reported
// as store.ErrNotFound.
package chatstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbackend/chatbackend/apiserver/store"
)

// Answer statuses.
const (
	StatusComplete   = "complete"
	StatusIncomplete = "incomplete" // the client went away mid-answer
	StatusFailed     = "failed"     // retrieval or the model failed
)

// Store runs the chat queries.
type Store struct{ pool *pgxpool.Pool }

// New returns the chat store on the core store's pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Answer is an assistant message to record.
type Answer struct {
	// ID is chosen before generation so the stream can announce it.
	ID               string
	Content          string
	Sources          json.RawMessage
	AgentType        string
	Status           string
	Model            string
	PromptTokens     int64
	CompletionTokens int64
}

// Message is a stored assistant message.
type Message struct {
	store.Message
	Status           string
	Model            string
	PromptTokens     int64
	CompletionTokens int64
}

// AddAnswer appends the assistant's answer to userID's conversation and marks
// the conversation updated, in one transaction.
func (s *Store) AddAnswer(ctx context.Context, userID, conversationID string, a Answer) (Message, error) {
	if _, err := uuid.Parse(conversationID); err != nil {
		return Message{}, store.ErrNotFound
	}
	switch a.Status {
	case StatusComplete, StatusIncomplete, StatusFailed:
	default:
		return Message{}, fmt.Errorf("add answer: invalid status %q", a.Status)
	}
	if a.ID == "" {
		a.ID = uuid.NewString()
	}
	if a.Sources == nil {
		a.Sources = json.RawMessage("[]")
	}
	var m Message
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
UPDATE conversations SET updated_at = clock_timestamp()
WHERE id = $1::uuid AND user_id = $2 AND is_active`, conversationID, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		var sources []byte
		err = tx.QueryRow(ctx, `
INSERT INTO messages (id, conversation_id, user_id, role, content, sources, agent_type, status, model,
                      prompt_tokens, completion_tokens, created_at)
VALUES ($1::uuid, $2::uuid, $3, 'assistant', $4, $5::jsonb, $6, $7, $8, $9, $10, clock_timestamp())
RETURNING id::text, conversation_id::text, role, content, sources, agent_type, created_at,
          status, model, prompt_tokens, completion_tokens`,
			a.ID, conversationID, userID, a.Content, string(a.Sources), a.AgentType, a.Status, a.Model,
			a.PromptTokens, a.CompletionTokens,
		).Scan(&m.ID, &m.ConversationID, &m.Role, &m.Content, &sources, &m.AgentType, &m.CreatedAt,
			&m.Status, &m.Model, &m.PromptTokens, &m.CompletionTokens)
		m.Sources = sources
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return Message{}, store.ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("add answer: %w", err)
	}
	return m, nil
}

// Turn is one message of the history.
type Turn struct {
	Role    string
	Content string
}

// History returns the last n user and assistant messages of userID's
// conversation, oldest first, leaving out failed answers (they hold no
// answer for the model to build on).
func (s *Store) History(ctx context.Context, userID, conversationID string, n int) ([]Turn, error) {
	if _, err := uuid.Parse(conversationID); err != nil {
		return nil, store.ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `
SELECT role, content FROM (
  SELECT m.role, m.content, m.created_at, m.id FROM messages m
  JOIN conversations c ON c.id = m.conversation_id
  WHERE m.conversation_id = $1::uuid AND c.user_id = $2 AND c.is_active AND m.user_id = $2
    AND m.role IN ('user', 'assistant') AND m.status <> 'failed' AND m.content <> ''
  ORDER BY m.created_at DESC, m.id DESC
  LIMIT $3
) recent ORDER BY created_at, id`, conversationID, userID, n)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	turns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Turn, error) {
		var t Turn
		err := r.Scan(&t.Role, &t.Content)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return turns, nil
}

// ErrNotAnswer is returned when feedback targets a message that is not an
// assistant answer.
var ErrNotAnswer = errors.New("only assistant answers can be rated")

// Feedback is a stored rating.
type Feedback struct {
	MessageID string    `json:"message_id"`
	Rating    string    `json:"rating"`
	Comment   string    `json:"comment"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SetFeedback records userID's rating of an answer in their own active
// conversation; rating again replaces the earlier rating.
func (s *Store) SetFeedback(ctx context.Context, userID, messageID, rating, comment string) (Feedback, error) {
	if _, err := uuid.Parse(messageID); err != nil {
		return Feedback{}, store.ErrNotFound
	}
	if rating != "up" && rating != "down" {
		return Feedback{}, fmt.Errorf("%w: rating must be \"up\" or \"down\"", store.ErrInvalid)
	}
	f := Feedback{MessageID: messageID, Rating: rating, Comment: comment}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var role string
		err := tx.QueryRow(ctx, `
SELECT m.role FROM messages m JOIN conversations c ON c.id = m.conversation_id
WHERE m.id = $1::uuid AND m.user_id = $2 AND c.user_id = $2 AND c.is_active`, messageID, userID).Scan(&role)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if role != store.RoleAssistant {
			return ErrNotAnswer
		}
		return tx.QueryRow(ctx, `
INSERT INTO message_feedback (message_id, user_id, rating, comment)
VALUES ($1::uuid, $2, $3, $4)
ON CONFLICT (message_id, user_id) DO UPDATE SET rating = EXCLUDED.rating, comment = EXCLUDED.comment, updated_at = now()
RETURNING updated_at`, messageID, userID, rating, comment).Scan(&f.UpdatedAt)
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, ErrNotAnswer):
		return Feedback{}, err
	case err != nil:
		return Feedback{}, fmt.Errorf("set feedback: %w", err)
	}
	return f, nil
}
