package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Page sizes of the list queries.
const (
	DefaultLimit = 20
	MaxLimit     = 100
	// MaxTitleLen is the longest conversation title, in characters.
	MaxTitleLen = 255
)

// Message roles.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleSystem    = "system"
)

// User is a BetterAuth user as last seen by this server.
type User struct {
	ID        string
	Email     string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Conversation is a user's chat thread.
type Conversation struct {
	ID        string
	Title     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Answer statuses (messages.status). A user's message is always complete.
const (
	StatusComplete   = "complete"
	StatusIncomplete = "incomplete" // the client went away mid-answer
	StatusFailed     = "failed"     // retrieval or the model failed
	// StatusStreaming: the answer is being generated; its row exists so
	// that its owner can stop it from any replica (StopAnswer).
	StatusStreaming = "streaming"
	// StatusStopped: its owner stopped it; it keeps the text streamed.
	StatusStopped = "stopped"
)

// Message is one turn of a conversation. Sources is a JSON value (the RAG
// layer's citations), "[]" when there are none. Status, Model and the token
// counts are what the chat records about an assistant answer.
type Message struct {
	ID               string
	ConversationID   string
	Role             string
	Content          string
	Sources          json.RawMessage
	AgentType        string
	Status           string
	Model            string
	PromptTokens     int64
	CompletionTokens int64
	CreatedAt        time.Time
}

// Page is one page of a keyset-paginated list. NextCursor is empty on the
// last page.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// SyncUser creates the user on first sight and updates email and name when
// they differ from the stored ones (it writes nothing when they are
// equal), and, in the same statement, tells whether the user may use the
// API, as CheckUser does: nil when the row is active, ErrUserInactive when
// it is deactivated. One round trip, where a write then CheckUser took
// two, each waiting for a pooled connection of its own. A user's first
// request on a replica pays it: under load every wait for a connection is
// a place in the pool's queue (make bench-stream, whose starts all come
// from users new to the replica, queued there three times each before).
func (s *Store) SyncUser(ctx context.Context, id, email, name string) error {
	if id == "" {
		return errors.New("sync user: empty id")
	}
	// The upsert returns the row it wrote; a row it left as it was (the
	// claims unchanged) is read from the statement's snapshot. Neither,
	// when another transaction inserted the row after that snapshot was
	// taken, with the same claims (two first requests of one user racing):
	// it is committed now (the upsert waited for it), and the statement run
	// once more, on a fresh snapshot, sees it. Run again rather than read
	// the row: a row deleted in between (by an administrator) is then
	// created as on first sight, not reported missing.
	for range 2 {
		var active bool
		err := s.pool.QueryRow(ctx, `
WITH up AS (
  INSERT INTO users (id, email, name) VALUES ($1, $2, $3)
  ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, updated_at = now()
  WHERE users.email IS DISTINCT FROM EXCLUDED.email OR users.name IS DISTINCT FROM EXCLUDED.name
  RETURNING is_active)
SELECT is_active FROM up
UNION ALL
SELECT is_active FROM users WHERE id = $1 AND NOT EXISTS (SELECT FROM up)`, id, email, name).Scan(&active)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue
		case err != nil:
			return fmt.Errorf("sync user: %w", err)
		case !active:
			return ErrUserInactive
		}
		return nil
	}
	return errors.New("sync user: another transaction inserted the row concurrently, twice")
}

// GetUser returns an active user.
func (s *Store) GetUser(ctx context.Context, id string) (User, error) {
	var u User
	err := s.pool.QueryRow(ctx,
		`SELECT id, email, name, created_at, updated_at FROM users WHERE id = $1 AND is_active`, id).
		Scan(&u.ID, &u.Email, &u.Name, &u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return User{}, notFound("get user", err)
	}
	return u, nil
}

// ErrUserInactive: the user's row is marked inactive (users.is_active =
// false, set by an administrator): the user may not use the API.
var ErrUserInactive = errors.New("this account is deactivated")

// CheckUser tells whether userID may use the API: nil when their row exists
// and is active, ErrUserInactive when it is deactivated, ErrNotFound when
// there is no row (never synced, or removed).
func (s *Store) CheckUser(ctx context.Context, id string) error {
	var active bool
	err := s.pool.QueryRow(ctx, `SELECT is_active FROM users WHERE id = $1`, id).Scan(&active)
	switch {
	case err != nil:
		return notFound("check user", err)
	case !active:
		return ErrUserInactive
	}
	return nil
}

// IsUserMissing reports whether err is a write refused because the user's
// row does not exist: a foreign key to users (user_id) that failed, the row
// having been removed behind the server's back. The row is re-created from
// the token on the user's next request once the server forgets it.
func IsUserMissing(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503" && // foreign_key_violation
		strings.HasSuffix(pgErr.ConstraintName, "_user_id_fkey")
}

// CreateConversation starts a conversation owned by userID.
func (s *Store) CreateConversation(ctx context.Context, userID, title string) (Conversation, error) {
	if err := checkTitle(title); err != nil {
		return Conversation{}, err
	}
	c, err := scanConversation(s.pool.QueryRow(ctx, `
INSERT INTO conversations (user_id, title) VALUES ($1, $2)
RETURNING `+conversationColumns, userID, title))
	if err != nil {
		return Conversation{}, fmt.Errorf("create conversation: %w", err)
	}
	return c, nil
}

// createConversationLimited is TakeRateToken's statement with the insert
// of CreateConversation ($5 the title) joined to the token it spent: one
// statement, so one round trip and one commit, and no conversation (no
// row) unless a token was spent.
const createConversationLimited = `
WITH taken AS (` + takeRateToken + `
)
INSERT INTO conversations (user_id, title) SELECT $1, $5 FROM taken
RETURNING ` + conversationColumns

// CreateConversationLimited is CreateConversation after spending a token
// of userID's budget (TakeRateToken), in one statement: over the limit it
// creates nothing and returns a *RateLimitedError.
func (s *Store) CreateConversationLimited(ctx context.Context, userID, title, budget string, limit RateLimit) (Conversation, error) {
	if err := checkTitle(title); err != nil {
		return Conversation{}, err
	}
	interval, err := rateArgs(budget, limit)
	if err != nil {
		return Conversation{}, err
	}
	c, err := scanConversation(s.pool.QueryRow(ctx, createConversationLimited, userID, budget, interval, limit.Burst, title))
	switch {
	case err == nil:
		return c, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return Conversation{}, fmt.Errorf("create conversation: %w", err)
	}
	refused, err := s.refusal(ctx, userID, budget, interval, limit.Burst)
	if err != nil {
		return Conversation{}, err
	}
	return Conversation{}, refused
}

// GetConversation returns userID's active conversation id.
func (s *Store) GetConversation(ctx context.Context, userID, id string) (Conversation, error) {
	cid, ok := parseID(id)
	if !ok {
		return Conversation{}, ErrNotFound
	}
	c, err := scanConversation(s.pool.QueryRow(ctx, `
SELECT `+conversationColumns+` FROM conversations
WHERE id = $1::uuid AND user_id = $2 AND is_active`, cid, userID))
	if err != nil {
		return Conversation{}, notFound("get conversation", err)
	}
	return c, nil
}

// ListConversations pages through userID's active conversations, most
// recently updated first.
func (s *Store) ListConversations(ctx context.Context, userID string, limit int, cursor string) (Page[Conversation], error) {
	limit = clampLimit(limit)
	after, err := decodeCursor(cursor)
	if err != nil {
		return Page[Conversation]{}, err
	}
	var rows pgx.Rows
	// One row more than asked tells whether another page exists.
	if after == nil {
		rows, err = s.pool.Query(ctx, `
SELECT `+conversationColumns+` FROM conversations
WHERE user_id = $1 AND is_active
ORDER BY updated_at DESC, id DESC LIMIT $2`, userID, limit+1)
	} else {
		rows, err = s.pool.Query(ctx, `
SELECT `+conversationColumns+` FROM conversations
WHERE user_id = $1 AND is_active AND (updated_at, id) < ($2::timestamptz, $3::uuid)
ORDER BY updated_at DESC, id DESC LIMIT $4`, userID, after.At, after.ID, limit+1)
	}
	if err != nil {
		return Page[Conversation]{}, fmt.Errorf("list conversations: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Conversation, error) { return scanConversation(r) })
	if err != nil {
		return Page[Conversation]{}, fmt.Errorf("list conversations: %w", err)
	}
	page := Page[Conversation]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		last := page.Items[limit-1]
		page.NextCursor = encodeCursor(last.UpdatedAt, last.ID)
	}
	return page, nil
}

// RenameConversation sets the title of userID's conversation id.
func (s *Store) RenameConversation(ctx context.Context, userID, id, title string) (Conversation, error) {
	if err := checkTitle(title); err != nil {
		return Conversation{}, err
	}
	cid, ok := parseID(id)
	if !ok {
		return Conversation{}, ErrNotFound
	}
	c, err := scanConversation(s.pool.QueryRow(ctx, `
UPDATE conversations SET title = $3, updated_at = clock_timestamp()
WHERE id = $1::uuid AND user_id = $2 AND is_active
RETURNING `+conversationColumns, cid, userID, title))
	if err != nil {
		return Conversation{}, notFound("rename conversation", err)
	}
	return c, nil
}

// DeleteConversation soft-deletes userID's conversation id: it disappears
// from every query but stays in the table.
func (s *Store) DeleteConversation(ctx context.Context, userID, id string) error {
	cid, ok := parseID(id)
	if !ok {
		return ErrNotFound
	}
	tag, err := s.pool.Exec(ctx, `
UPDATE conversations SET is_active = FALSE, updated_at = clock_timestamp()
WHERE id = $1::uuid AND user_id = $2 AND is_active`, cid, userID)
	if err != nil {
		return fmt.Errorf("delete conversation: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// ListMessages pages through the messages of userID's active conversation,
// oldest first. A foreign, deleted or missing conversation is ErrNotFound.
func (s *Store) ListMessages(ctx context.Context, userID, conversationID string, limit int, cursor string) (Page[Message], error) {
	limit = clampLimit(limit)
	after, err := decodeCursor(cursor)
	if err != nil {
		return Page[Message]{}, err
	}
	conv, err := s.GetConversation(ctx, userID, conversationID)
	if err != nil {
		return Page[Message]{}, err
	}
	conversationID = conv.ID
	var rows pgx.Rows
	if after == nil {
		rows, err = s.pool.Query(ctx, `
SELECT `+messageColumns+` FROM messages
WHERE conversation_id = $1::uuid AND user_id = $2
ORDER BY created_at, id LIMIT $3`, conversationID, userID, limit+1)
	} else {
		rows, err = s.pool.Query(ctx, `
SELECT `+messageColumns+` FROM messages
WHERE conversation_id = $1::uuid AND user_id = $2 AND (created_at, id) > ($3::timestamptz, $4::uuid)
ORDER BY created_at, id LIMIT $5`, conversationID, userID, after.At, after.ID, limit+1)
	}
	if err != nil {
		return Page[Message]{}, fmt.Errorf("list messages: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return Page[Message]{}, fmt.Errorf("list messages: %w", err)
	}
	page := Page[Message]{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		last := page.Items[limit-1]
		page.NextCursor = encodeCursor(last.CreatedAt, last.ID)
	}
	return page, nil
}

// NewMessage is a message to append with AddMessages.
type NewMessage struct {
	// ID is empty for a database-chosen id; the chat chooses an answer's id
	// before generating it, so the stream can announce it.
	ID        string
	Role      string
	Content   string
	Sources   json.RawMessage // nil → []
	AgentType string
	// Status is one of the Status constants; empty means StatusComplete.
	Status           string
	Model            string
	PromptTokens     int64
	CompletionTokens int64
}

// AddMessages appends messages, in order, to userID's active conversation and
// marks the conversation as updated, all in one transaction: either every
// message is stored or none is.
func (s *Store) AddMessages(ctx context.Context, userID, conversationID string, msgs ...NewMessage) ([]Message, error) {
	_, out, err := s.appendMessages(ctx, userID, conversationID, nil, nil, msgs)
	return out, err
}

// appendMessages appends msgs to userID's active conversation, after
// spending charge's token when it is not nil (its statement first, so a
// user's racing turns queue on their budget's row before anything else)
// and reading its history when hist is not nil, in one transaction of two
// round trips: BEGIN and every statement go in one pgx batch (one
// pipeline), then COMMIT. Why not BEGIN, SELECT, UPDATE, INSERT...,
// COMMIT each on its own: every round trip holds a pooled connection, and
// a chat turn's start made six of them before its first byte; under a
// burst of streams the starts queued for the pool (make bench-stream).
// Why COMMIT apart rather than the batch's implicit transaction: a caller
// that gives up (its deadline) must leave nothing stored; PostgreSQL runs a
// whole pipeline it has received, commit included, even when the client
// is gone, but aborts a transaction whose COMMIT never came. It also lets
// a refused token roll back what the batch wrote after it.
func (s *Store) appendMessages(ctx context.Context, userID, conversationID string, charge *Charge, hist *historyQuery, msgs []NewMessage) ([]Turn, []Message, error) {
	cid, ok := parseID(conversationID)
	if !ok {
		return nil, nil, ErrNotFound
	}
	ins, err := newInsertMessages(msgs)
	if err != nil {
		return nil, nil, err
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	taken := true
	var interval float64
	if charge != nil {
		if interval, err = rateArgs(charge.Budget, charge.Limit); err != nil {
			return nil, nil, err
		}
		b.Queue(takeRateToken, userID, charge.Budget, interval, charge.Limit.Burst).QueryRow(func(r pgx.Row) error {
			err := r.Scan(&taken)
			if errors.Is(err, pgx.ErrNoRows) {
				taken, err = false, nil
			}
			return err
		})
	}
	var turns []Turn
	if hist != nil {
		hist.queue(b, cid, userID, &turns)
	}
	out := make([]Message, 0, len(msgs))
	ins.queue(b, cid, userID, &out)
	br := s.pool.SendBatch(ctx, b)
	err = br.Close()
	tx := br.Tx()
	switch {
	case err != nil:
		_ = tx.Rollback(ctx)
		return nil, nil, fmt.Errorf("add messages: %w", err)
	case !taken:
		// The batch ran on, but its writes go with the rollback: a
		// refused turn stores nothing. Refusals are rare; a statement
		// that failed the batch instead would cost every turn.
		_ = tx.Rollback(ctx)
		refused, err := s.refusal(ctx, userID, charge.Budget, interval, charge.Limit.Burst)
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, refused
	case len(out) == 0:
		// The statement's UPDATE found no active conversation of the
		// user, so it inserted nothing; a token taken stays spent.
		return nil, nil, notFoundSpending(ctx, tx, charge != nil)
	case len(out) != len(msgs):
		// Cannot happen: one row per message once the conversation is.
		_ = tx.Rollback(ctx)
		return nil, nil, fmt.Errorf("add messages: %d of %d stored", len(out), len(msgs))
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, fmt.Errorf("add messages: %w", err)
	}
	return turns, out, nil
}

// notFoundSpending ends the transaction of a write that found nothing to
// write to: committed when it spent a rate token (charged), so the token
// stays spent, else rolled back. It returns ErrNotFound, or why the
// commit failed.
func notFoundSpending(ctx context.Context, tx pgx.Tx, charged bool) error {
	if !charged {
		_ = tx.Rollback(ctx)
		return ErrNotFound
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("spend the rate token of a missing conversation: %w", err)
	}
	return ErrNotFound
}

// check refuses a message the messages table's constraints would refuse, with
// an error that names the field.
func (m NewMessage) check() error {
	switch m.Role {
	case RoleUser, RoleAssistant, RoleSystem:
	default:
		return fmt.Errorf("add message: invalid role %q", m.Role)
	}
	if m.Sources != nil && !json.Valid(m.Sources) {
		return errors.New("add message: sources is not valid JSON")
	}
	switch m.Status {
	case "", StatusComplete, StatusIncomplete, StatusFailed, StatusStreaming, StatusStopped:
	default:
		return fmt.Errorf("add message: invalid status %q", m.Status)
	}
	if m.ID != "" {
		if _, ok := parseID(m.ID); !ok {
			return fmt.Errorf("add message: id %q is not a UUID", m.ID)
		}
	}
	return nil
}

// insertMessages is the one statement that marks a conversation updated
// and appends messages to it: the UPDATE, in a CTE, locks the conversation
// row (a concurrent delete waits for the transaction) and gives the
// inserts the conversation's id and owner, so they store nothing (rather
// than fail on the foreign key) unless the conversation is $2's and
// active; the messages go as one array per column, one row each. One
// statement rather than an UPDATE and an INSERT per message: a chat turn
// writes two messages, and each statement is parsed, planned and run on
// its own (make bench-http, "post a message").
//
// A message's created_at is the conversation's new updated_at (one
// clock_timestamp) plus its position in microseconds: messages written
// together sort in the order they were given, and before any written by
// a later transaction (which waits on the row lock, so reads its clock
// after this one committed).
const insertMessages = `
WITH c AS (
  UPDATE conversations SET updated_at = clock_timestamp()
  WHERE id = $1::uuid AND user_id = $2 AND is_active
  RETURNING id, user_id, updated_at)
INSERT INTO messages (id, conversation_id, user_id, role, content, sources, agent_type,
                      status, model, prompt_tokens, completion_tokens, created_at)
SELECT COALESCE(NULLIF(m.id, '')::uuid, gen_random_uuid()), c.id, c.user_id, m.role, m.content, m.sources::jsonb,
       m.agent_type, m.status, m.model, m.prompt_tokens, m.completion_tokens,
       c.updated_at + (m.n - 1) * interval '1 microsecond'
FROM c, unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
               $10::int8[], $11::int8[])
     WITH ORDINALITY AS m(id, role, content, sources, agent_type, status, model, prompt_tokens, completion_tokens, n)
RETURNING ` + messageColumns

// insertMessagesArgs are insertMessages' arrays, $3 to $11.
type insertMessagesArgs struct {
	ids, roles, contents, sources, agentTypes, statuses, models []string
	promptTokens, completionTokens                              []int64
}

// newInsertMessages checks msgs (at least one) and lays them out as
// insertMessages' arrays.
func newInsertMessages(msgs []NewMessage) (insertMessagesArgs, error) {
	if len(msgs) == 0 {
		return insertMessagesArgs{}, errors.New("add messages: no message to add")
	}
	a := insertMessagesArgs{}
	for _, m := range msgs {
		if err := m.check(); err != nil {
			return a, err
		}
		sources := m.Sources
		if sources == nil {
			sources = json.RawMessage("[]")
		}
		status := m.Status
		if status == "" {
			status = StatusComplete
		}
		a.ids = append(a.ids, m.ID)
		a.roles = append(a.roles, m.Role)
		a.contents = append(a.contents, m.Content)
		a.sources = append(a.sources, string(sources))
		a.agentTypes = append(a.agentTypes, m.AgentType)
		a.statuses = append(a.statuses, status)
		a.models = append(a.models, m.Model)
		a.promptTokens = append(a.promptTokens, m.PromptTokens)
		a.completionTokens = append(a.completionTokens, m.CompletionTokens)
	}
	return a, nil
}

// queue adds the statement to b, appending the stored messages, in the
// order given, to out.
func (a insertMessagesArgs) queue(b *pgx.Batch, cid, userID string, out *[]Message) {
	b.Queue(insertMessages, cid, userID, a.ids, a.roles, a.contents, a.sources, a.agentTypes,
		a.statuses, a.models, a.promptTokens, a.completionTokens).Query(func(rows pgx.Rows) error {
		stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
		if err != nil {
			return err
		}
		// RETURNING promises no order; created_at is the given one.
		slices.SortFunc(stored, func(x, y Message) int { return x.CreatedAt.Compare(y.CreatedAt) })
		*out = append(*out, stored...)
		return nil
	})
}

// conversationColumns are the columns scanConversation reads, in its order.
const conversationColumns = `id::text, title, created_at, updated_at`

func scanConversation(r pgx.Row) (Conversation, error) {
	var c Conversation
	err := r.Scan(&c.ID, &c.Title, &c.CreatedAt, &c.UpdatedAt)
	return c, err
}

// messageColumns are the columns scanMessage reads, in its order.
const messageColumns = `id::text, conversation_id::text, role, content, sources, agent_type,
status, model, prompt_tokens, completion_tokens, created_at`

func scanMessage(r pgx.Row) (Message, error) {
	var m Message
	var sources []byte
	err := r.Scan(&m.ID, &m.ConversationID, &m.Role, &m.Content, &sources, &m.AgentType,
		&m.Status, &m.Model, &m.PromptTokens, &m.CompletionTokens, &m.CreatedAt)
	m.Sources = json.RawMessage(sources)
	return m, err
}

func checkTitle(title string) error {
	if n := utf8.RuneCountInString(title); n > MaxTitleLen {
		return fmt.Errorf("%w: title has %d characters, at most %d are allowed", ErrInvalid, n, MaxTitleLen)
	}
	return nil
}

// ErrInvalid: the input breaks a documented limit; the message says which.
var ErrInvalid = errors.New("invalid input")

func clampLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultLimit
	case limit > MaxLimit:
		return MaxLimit
	}
	return limit
}

// parseID accepts only canonical UUIDs, so a malformed id is simply not found
// instead of a database error.
func parseID(id string) (string, bool) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", false
	}
	return u.String(), true
}

func notFound(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "22P02" { // invalid text representation
		return ErrNotFound
	}
	return fmt.Errorf("%s: %w", op, err)
}

// cursor is the position after which the next page starts. Clients see it as
// an opaque string.
type cursor struct {
	At time.Time `json:"t"`
	ID string    `json:"i"`
}

func encodeCursor(at time.Time, id string) string {
	b, _ := json.Marshal(cursor{At: at.UTC(), ID: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, ErrBadCursor
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.At.IsZero() {
		return nil, ErrBadCursor
	}
	id, ok := parseID(c.ID)
	if !ok {
		return nil, ErrBadCursor
	}
	c.ID = id
	return &c, nil
}
