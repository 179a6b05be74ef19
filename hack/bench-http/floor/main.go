// Command floor is the plain Go peer that `make bench-http` measures
// chat-apiserver against: net/http, keyfunc and pgx doing the same work for
// the same requests, with no framework, no metrics and no log. It verifies
// the RS256 bearer token against the JWKS (allowlisted algorithm, kid, exp,
// iss, aud) and runs the same SQL as apiserver/store, so the difference
// between the two is what chat-apiserver adds: gin, middleware, metrics,
// the access log, the user row check. For `make bench-stream` it also
// streams answers from the model (stream.go): a lower bound on a stream's
// cost rather than the same work.
//
//	DATABASE_URL=... JWKS_URL=... ISSUER=... LISTEN_ADDR=127.0.0.1:0 \
//	OPENAI_BASE_URL=... OPENAI_API_KEY=... floor
//
// It is a benchmark peer, not a server to run: it checks no user row and
// bounds nothing.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

type server struct {
	db     *pgxpool.Pool
	kf     keyfunc.Keyfunc
	parser *jwt.Parser
	model  model
}

func run() error {
	ctx := context.Background()
	db, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer db.Close()
	kf, err := keyfunc.NewDefaultCtx(ctx, []string{os.Getenv("JWKS_URL")})
	if err != nil {
		return err
	}
	iss := os.Getenv("ISSUER")
	s := &server{db: db, kf: kf, model: newModel(), parser: jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithExpirationRequired(), jwt.WithIssuer(iss), jwt.WithAudience(iss), jwt.WithLeeway(30*time.Second))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /v1/conversations", s.listConversations)
	mux.HandleFunc("POST /v1/conversations", s.createConversation)
	mux.HandleFunc("GET /v1/conversations/{id}/messages", s.listMessages)
	mux.HandleFunc("POST /v1/conversations/{id}/messages", s.answer)
	ln, err := net.Listen("tcp", os.Getenv("LISTEN_ADDR"))
	if err != nil {
		return err
	}
	// The harness reads the address from the first line.
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

// user verifies the bearer token and returns its sub, or answers 401.
func (s *server) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var c jwt.RegisteredClaims
	if ok {
		_, err := s.parser.ParseWithClaims(raw, &c, s.kf.Keyfunc)
		ok = err == nil && c.Subject != ""
	}
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "unauthorized", "message": "invalid token"}})
	}
	return c.Subject, ok
}

type conversation struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type message struct {
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id"`
	Role           string          `json:"role"`
	Content        string          `json:"content"`
	Sources        json.RawMessage `json:"sources"`
	AgentType      string          `json:"agent_type"`
	Status         string          `json:"status"`
	Model          string          `json:"model"`
	Usage          map[string]int  `json:"usage"`
	CreatedAt      time.Time       `json:"created_at"`
}

type list[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func (s *server) listConversations(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	const limit = 20
	rows, err := s.db.Query(r.Context(), `
SELECT id::text, title, created_at, updated_at FROM conversations
WHERE user_id = $1 AND is_active
ORDER BY updated_at DESC, id DESC LIMIT $2`, user, limit+1)
	if err != nil {
		fail(w, err)
		return
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (conversation, error) {
		var c conversation
		err := r.Scan(&c.ID, &c.Title, &c.CreatedAt, &c.UpdatedAt)
		return c, err
	})
	if err != nil {
		fail(w, err)
		return
	}
	out := list[conversation]{Items: items}
	if len(items) > limit {
		out.Items = items[:limit]
		last := items[limit-1]
		next := cursor(last.UpdatedAt, last.ID)
		out.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) createConversation(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	var body struct {
		Title string `json:"title"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "bad_request", "message": "bad body"}})
		return
	}
	var c conversation
	err := s.db.QueryRow(r.Context(), `
INSERT INTO conversations (user_id, title) VALUES ($1, $2)
RETURNING id::text, title, created_at, updated_at`, user, body.Title).Scan(&c.ID, &c.Title, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

// listMessages runs store.ListMessages' two queries: the conversation must
// be the user's, then one keyset page of its messages.
func (s *server) listMessages(w http.ResponseWriter, r *http.Request) {
	user, ok := s.user(w, r)
	if !ok {
		return
	}
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	var after struct {
		At time.Time `json:"t"`
		ID string    `json:"i"`
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err == nil {
			err = json.Unmarshal(b, &after)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "bad_request", "message": "invalid cursor"}})
			return
		}
	}
	ctx := r.Context()
	var cid string
	err := s.db.QueryRow(ctx, `SELECT id::text FROM conversations WHERE id = $1::uuid AND user_id = $2 AND is_active`,
		r.PathValue("id"), user).Scan(&cid)
	if err != nil {
		fail(w, err)
		return
	}
	const columns = `id::text, conversation_id::text, role, content, sources, agent_type,
status, model, prompt_tokens, completion_tokens, created_at`
	var rows pgx.Rows
	if after.ID == "" {
		rows, err = s.db.Query(ctx, `SELECT `+columns+` FROM messages
WHERE conversation_id = $1::uuid AND user_id = $2
ORDER BY created_at, id LIMIT $3`, cid, user, limit+1)
	} else {
		rows, err = s.db.Query(ctx, `SELECT `+columns+` FROM messages
WHERE conversation_id = $1::uuid AND user_id = $2 AND (created_at, id) > ($3::timestamptz, $4::uuid)
ORDER BY created_at, id LIMIT $5`, cid, user, after.At, after.ID, limit+1)
	}
	if err != nil {
		fail(w, err)
		return
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (message, error) {
		var m message
		var prompt, completion int
		err := r.Scan(&m.ID, &m.ConversationID, &m.Role, &m.Content, &m.Sources, &m.AgentType,
			&m.Status, &m.Model, &prompt, &completion, &m.CreatedAt)
		m.Usage = map[string]int{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
		return m, err
	})
	if err != nil {
		fail(w, err)
		return
	}
	out := list[message]{Items: items}
	if len(items) > limit {
		out.Items = items[:limit]
		last := items[limit-1]
		next := cursor(last.CreatedAt, last.ID)
		out.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, out)
}

func cursor(at time.Time, id string) string {
	b, _ := json.Marshal(map[string]any{"t": at.UTC(), "i": id})
	return base64.RawURLEncoding.EncodeToString(b)
}

func fail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, pgx.ErrNoRows) {
		status = http.StatusNotFound
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": "error", "message": "failed"}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
