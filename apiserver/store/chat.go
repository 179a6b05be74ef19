package store

// Queries of the chat turn beyond appending messages: the history sent to
// the model and the users' ratings of answers.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Turn is one message of the history given to the model.
type Turn struct {
	Role    string
	Content string
}

// History returns the last n user and assistant messages of userID's
// conversation, oldest first, leaving out failed answers (they hold no
// answer for the model to build on).
func (s *Store) History(ctx context.Context, userID, conversationID string, n int) ([]Turn, error) {
	cid, ok := parseID(conversationID)
	if !ok {
		return nil, ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `
SELECT role, content FROM (
  SELECT m.role, m.content, m.created_at, m.id FROM messages m
  JOIN conversations c ON c.id = m.conversation_id
  WHERE m.conversation_id = $1::uuid AND c.user_id = $2 AND c.is_active AND m.user_id = $2
    AND m.role IN ('user', 'assistant') AND m.status <> 'failed' AND m.content <> ''
  ORDER BY m.created_at DESC, m.id DESC
  LIMIT $3
) recent ORDER BY created_at, id`, cid, userID, n)
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

// Ratings of an answer.
const (
	RatingUp   = "up"
	RatingDown = "down"
)

// MaxCommentChars is the longest feedback comment (the
// message_feedback.comment check).
const MaxCommentChars = 2000

// ErrNotAnswer is returned when feedback targets a message that is not an
// assistant answer.
var ErrNotAnswer = errors.New("only assistant answers can be rated")

// Feedback is a stored rating.
type Feedback struct {
	MessageID string
	Rating    string
	Comment   string
	UpdatedAt time.Time
}

// SetFeedback records userID's rating of an answer in their own active
// conversation; rating again replaces the earlier rating.
func (s *Store) SetFeedback(ctx context.Context, userID, messageID, rating, comment string) (Feedback, error) {
	mid, ok := parseID(messageID)
	if !ok {
		return Feedback{}, ErrNotFound
	}
	if rating != RatingUp && rating != RatingDown {
		return Feedback{}, fmt.Errorf("%w: rating must be %q or %q", ErrInvalid, RatingUp, RatingDown)
	}
	f := Feedback{MessageID: mid, Rating: rating, Comment: comment}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var role string
		err := tx.QueryRow(ctx, `
SELECT m.role FROM messages m JOIN conversations c ON c.id = m.conversation_id
WHERE m.id = $1::uuid AND m.user_id = $2 AND c.user_id = $2 AND c.is_active`, mid, userID).Scan(&role)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if role != RoleAssistant {
			return ErrNotAnswer
		}
		return tx.QueryRow(ctx, `
INSERT INTO message_feedback (message_id, user_id, rating, comment)
VALUES ($1::uuid, $2, $3, $4)
ON CONFLICT (message_id, user_id) DO UPDATE SET rating = EXCLUDED.rating, comment = EXCLUDED.comment, updated_at = now()
RETURNING updated_at`, mid, userID, rating, comment).Scan(&f.UpdatedAt)
	})
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNotAnswer):
		return Feedback{}, err
	case err != nil:
		return Feedback{}, fmt.Errorf("set feedback: %w", err)
	}
	return f, nil
}
