package store

// Queries of the chat turn beyond appending messages: the history sent to
// the model and the users' ratings of answers.

import (
	"context"
	"encoding/json"
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

// StartTurn starts a chat turn in userID's active conversation: it spends
// a token of userID's budget when charge is not nil (as TakeRateToken
// would), reads the conversation's last n user and assistant messages,
// oldest first, leaving out failed answers (they hold no answer for the
// model to build on) and, with before (a message id, "" for none), only
// those older than that one (the history of a question asked again,
// Store.QuestionOf); then it appends msgs as AddMessages does. One
// transaction of two round trips (see appendMessages). Over the limit it
// stores nothing, spends nothing and returns a *RateLimitedError. A
// conversation that is not the user's, or not active, is ErrNotFound and
// nothing is stored, but the token is spent, as when the route took it
// before looking: probing for conversations costs a user's budget like
// asking in them.
func (s *Store) StartTurn(ctx context.Context, userID, conversationID string, charge *Charge, n int, before string, msgs ...NewMessage) ([]Turn, []Message, error) {
	hist, ok := newHistoryQuery(n, before)
	if !ok {
		return nil, nil, ErrNotFound
	}
	return s.appendMessages(ctx, userID, conversationID, charge, &hist, msgs)
}

// historyQuery is the read of History.
type historyQuery struct {
	n      int
	before *string
}

// newHistoryQuery is the read of n messages older than before (""
// for none); false when before is not an id.
func newHistoryQuery(n int, before string) (historyQuery, bool) {
	h := historyQuery{n: n}
	if before != "" {
		id, ok := parseID(before)
		if !ok {
			return h, false
		}
		h.before = &id
	}
	return h, true
}

// queue adds the read to b; its rows go to turns.
func (h historyQuery) queue(b *pgx.Batch, cid, userID string, turns *[]Turn) {
	b.Queue(`
SELECT role, content FROM (
  SELECT m.role, m.content, m.created_at, m.id FROM messages m
  JOIN conversations c ON c.id = m.conversation_id
  WHERE m.conversation_id = $1::uuid AND c.user_id = $2 AND c.is_active AND m.user_id = $2
    AND m.role IN ('user', 'assistant') AND m.status <> 'failed' AND m.content <> ''
    AND ($4::uuid IS NULL OR (m.created_at, m.id) < (SELECT b.created_at, b.id FROM messages b WHERE b.id = $4::uuid))
  ORDER BY m.created_at DESC, m.id DESC
  LIMIT $3
) recent ORDER BY created_at, id`, cid, userID, h.n, h.before).Query(func(rows pgx.Rows) error {
		var err error
		*turns, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Turn, error) {
			var t Turn
			err := r.Scan(&t.Role, &t.Content)
			return t, err
		})
		return err
	})
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

// ErrFinished is returned when a stop targets an answer that is no longer
// streaming.
var ErrFinished = errors.New("the answer has already finished")

// StopAnswer marks userID's streaming answer messageID, in their active
// conversation conversationID, as stopped; the replica streaming it ends it
// (see StoppedAnswers). An answer that is no longer streaming is
// ErrFinished; one that is not the user's, or not in that conversation, is
// ErrNotFound.
func (s *Store) StopAnswer(ctx context.Context, userID, conversationID, messageID string) (Message, error) {
	cid, ok := parseID(conversationID)
	mid, ok2 := parseID(messageID)
	if !ok || !ok2 {
		return Message{}, ErrNotFound
	}
	var m Message
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// FOR UPDATE: the answer's own save (FinishAnswer) waits for the
		// stop, or the stop for the save, never an interleaving.
		var status string
		err := tx.QueryRow(ctx, `
SELECT m.status FROM messages m JOIN conversations c ON c.id = m.conversation_id
WHERE m.id = $1::uuid AND m.conversation_id = $2::uuid AND m.user_id = $3
  AND c.user_id = $3 AND c.is_active AND m.role = 'assistant'
FOR UPDATE OF m`, mid, cid, userID).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if status != StatusStreaming {
			return ErrFinished
		}
		m, err = scanMessage(tx.QueryRow(ctx, `
UPDATE messages SET status = 'stopped' WHERE id = $1::uuid RETURNING `+messageColumns, mid))
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrFinished):
		return Message{}, err
	case err != nil:
		return Message{}, fmt.Errorf("stop answer: %w", err)
	}
	return m, nil
}

// StoppedAnswers returns which of the answers ids (streaming on one
// replica) their owners stopped (StopAnswer): one primary-key lookup for
// them all.
func (s *Store) StoppedAnswers(ctx context.Context, ids []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text FROM messages WHERE id = ANY($1::uuid[]) AND status = 'stopped'`, ids)
	if err != nil {
		return nil, fmt.Errorf("read answer statuses: %w", err)
	}
	stopped, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read answer statuses: %w", err)
	}
	return stopped, nil
}

// FinishAnswer stores the end of userID's answer m.ID, stored as
// StatusStreaming when it started: its text, sources, model, usage and
// status. An answer its owner stopped meanwhile stays StatusStopped.
func (s *Store) FinishAnswer(ctx context.Context, userID string, m NewMessage) (Message, error) {
	if err := m.check(); err != nil {
		return Message{}, err
	}
	sources := m.Sources
	if sources == nil {
		sources = json.RawMessage("[]")
	}
	msg, err := scanMessage(s.pool.QueryRow(ctx, `
UPDATE messages SET content = $3, sources = $4::jsonb, agent_type = $5, model = $6,
    prompt_tokens = $7, completion_tokens = $8,
    status = CASE WHEN status = 'stopped' THEN 'stopped' ELSE $9 END
WHERE id = $1::uuid AND user_id = $2 AND status IN ('streaming', 'stopped')
RETURNING `+messageColumns,
		m.ID, userID, m.Content, string(sources), m.AgentType, m.Model,
		m.PromptTokens, m.CompletionTokens, m.Status))
	if err != nil {
		return Message{}, notFound("finish answer", err)
	}
	return msg, nil
}

// AbandonStreaming marks as StatusIncomplete, keeping their content, at
// most limit answers still StatusStreaming that started more than
// olderThan ago: no replica streams them any more (the one that did died
// before it could store their end), and a streaming answer must not stay
// stoppable and "in progress" forever. It returns how many it marked. One
// bounded statement on the partial index of streaming answers; SKIP LOCKED
// leaves an answer a stop or its own save is writing to that writer.
func (s *Store) AbandonStreaming(ctx context.Context, olderThan time.Duration, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
UPDATE messages SET status = 'incomplete'
WHERE id IN (
  SELECT id FROM messages
  WHERE status = 'streaming' AND created_at < now() - make_interval(secs => $1)
  ORDER BY created_at LIMIT $2
  FOR UPDATE SKIP LOCKED)`, olderThan.Seconds(), limit)
	if err != nil {
		return 0, fmt.Errorf("mark abandoned streaming answers incomplete: %w", err)
	}
	return tag.RowsAffected(), nil
}

// ErrStreaming is returned when an answer to regenerate is still streaming.
var ErrStreaming = errors.New("the answer is still streaming: stop it first")

// QuestionOf returns the question userID's answer messageID, in their
// active conversation conversationID, answers: the user message right
// before it. An answer still streaming is ErrStreaming; a message that is
// not the user's answer in that conversation is ErrNotFound. One
// statement: the answer's status and its question's row together.
func (s *Store) QuestionOf(ctx context.Context, userID, conversationID, messageID string) (Message, error) {
	cid, ok := parseID(conversationID)
	mid, ok2 := parseID(messageID)
	if !ok || !ok2 {
		return Message{}, ErrNotFound
	}
	var status string
	q, err := scanMessage(withColumn{s.pool.QueryRow(ctx, `
SELECT q.*, a.status
FROM messages a JOIN conversations c ON c.id = a.conversation_id
JOIN LATERAL (
  SELECT `+messageColumns+` FROM messages q
  WHERE q.conversation_id = a.conversation_id AND q.role = 'user' AND (q.created_at, q.id) < (a.created_at, a.id)
  ORDER BY q.created_at DESC, q.id DESC LIMIT 1) q ON true
WHERE a.id = $1::uuid AND a.conversation_id = $2::uuid AND a.user_id = $3
  AND c.user_id = $3 AND c.is_active AND a.role = 'assistant'`, mid, cid, userID), &status})
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("find the question of answer %s: %w", mid, err)
	}
	if status == StatusStreaming {
		return Message{}, ErrStreaming
	}
	return q, nil
}

// withColumn is a row whose last column, after those its reader scans,
// goes to extra.
type withColumn struct {
	pgx.Row
	extra any
}

func (r withColumn) Scan(dest ...any) error { return r.Row.Scan(append(dest, r.extra)...) }
