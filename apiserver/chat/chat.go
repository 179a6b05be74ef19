package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/chatbackend/chatbackend/apiserver/rag"
	"github.com/chatbackend/chatbackend/apiserver/rag/generate"
	"github.com/chatbackend/chatbackend/apiserver/store"
)

// Limits of a turn.
const (
	// MaxQuestionChars bounds a question, in characters.
	MaxQuestionChars = 4000
	// DefaultHistoryMessages is how many earlier messages are candidates
	// for the model's context (the generator trims them to its token
	// budget).
	DefaultHistoryMessages = 20
	// titleChars bounds the title Run gives a conversation it starts.
	titleChars = 80
	// saveTimeout bounds storing an answer after the request context ended
	// (the client left): the answer is still recorded, as incomplete.
	saveTimeout = 10 * time.Second
)

// How a turn that did not complete ended. The answer is stored in every
// case; the text of each is what a client may be shown.
var (
	ErrClientGone      = errors.New("the client went away; the answer is stored as incomplete")
	ErrRetrievalFailed = errors.New("the documentation could not be searched")
	ErrModelFailed     = errors.New("the language model failed; the answer is incomplete")
	// ErrAnswerNotStored wraps the store's error when the answer itself
	// could not be saved.
	ErrAnswerNotStored = errors.New("the answer could not be stored")
)

// InvalidError is input the service refuses; its message is meant for the
// client.
type InvalidError struct{ Message string }

func (e *InvalidError) Error() string { return e.Message }

// Sink receives a turn's events as they happen. A method returning an error
// means nobody listens any more (the client went away): the turn stops
// generating and stores the answer as incomplete.
type Sink interface {
	// Started: the question is stored and the answer's id chosen.
	Started(Started) error
	// Sources: retrieval succeeded; the answer draws on these.
	Sources([]rag.Source) error
	// Delta: the next piece of the answer's text.
	Delta(text string) error
}

// Started identifies a turn in progress.
type Started struct {
	ConversationID string
	UserMessageID  string
	AnswerID       string
}

// Discard is a Sink that ignores every event, for callers that want only
// the final Turn.
var Discard Sink = discard{}

type discard struct{}

func (discard) Started(Started) error      { return nil }
func (discard) Sources([]rag.Source) error { return nil }
func (discard) Delta(string) error         { return nil }

// Turn is one question and its stored answer.
type Turn struct {
	ConversationID string
	Question       store.Message
	Answer         store.Message
	Sources        []rag.Source
}

// Service runs chat turns on the store and the RAG engine.
type Service struct {
	store  *store.Store
	engine *rag.Engine
	log    *slog.Logger
	// metrics is nil until Instrument.
	metrics *metrics
}

// New returns the service. logger nil means slog.Default().
func New(st *store.Store, engine *rag.Engine, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{store: st, engine: engine, log: logger}
}

// ValidQuestion trims q and checks its length.
func ValidQuestion(q string) (string, error) {
	q = strings.TrimSpace(q)
	switch {
	case q == "":
		return "", &InvalidError{Message: "the question is empty"}
	case utf8.RuneCountInString(q) > MaxQuestionChars:
		return "", &InvalidError{Message: fmt.Sprintf("the question is longer than %d characters", MaxQuestionChars)}
	}
	return q, nil
}

// Ask answers question in userID's conversation, reporting its progress to
// sink; see the package documentation for the steps. On an error the Turn
// holds whatever was stored (the question always, once the conversation was
// found).
func (s *Service) Ask(ctx context.Context, userID, conversationID, question string, sink Sink) (Turn, error) {
	q, err := ValidQuestion(question)
	if err != nil {
		return Turn{}, err
	}
	return s.ask(ctx, userID, conversationID, q, sink)
}

// Run answers question in conversationID, or in a new conversation titled
// from the question when conversationID is empty.
func (s *Service) Run(ctx context.Context, userID, conversationID, question string) (Turn, error) {
	q, err := ValidQuestion(question)
	if err != nil {
		return Turn{}, err
	}
	if conversationID == "" {
		conv, err := s.store.CreateConversation(ctx, userID, rag.Snippet(q, titleChars))
		if err != nil {
			return Turn{}, err
		}
		conversationID = conv.ID
	}
	return s.ask(ctx, userID, conversationID, q, Discard)
}

// listener remembers the first error of the sink: from then on the client
// is gone.
type listener struct{ err error }

func (l *listener) note(err error) error {
	if err != nil && l.err == nil {
		l.err = err
	}
	return err
}

func (s *Service) ask(ctx context.Context, userID, conversationID, q string, sink Sink) (Turn, error) {
	t := Turn{ConversationID: conversationID, Sources: []rag.Source{}}
	history, err := s.store.History(ctx, userID, conversationID, DefaultHistoryMessages)
	if err != nil {
		return t, err
	}
	msgs, err := s.store.AddMessages(ctx, userID, conversationID, store.NewMessage{Role: store.RoleUser, Content: q})
	if err != nil {
		return t, err
	}
	t.Question = msgs[0]
	answerID := uuid.NewString()
	l := &listener{}
	_ = l.note(sink.Started(Started{ConversationID: conversationID, UserMessageID: t.Question.ID, AnswerID: answerID}))

	retrieved, retrErr := s.engine.Retrieve(ctx, q)
	if retrieved.Sources != nil {
		t.Sources = retrieved.Sources
	}
	var res generate.Result
	var genErr error
	if retrErr == nil {
		_ = l.note(sink.Sources(t.Sources))
		turns := make([]generate.Turn, len(history))
		for i, m := range history {
			turns[i] = generate.Turn{Role: m.Role, Content: m.Content}
		}
		res, genErr = s.engine.Generator.Generate(ctx, generate.Request{
			Question: q, History: turns, Passages: retrieved.Passages,
		}, func(d string) error { return l.note(sink.Delta(d)) })
	}

	status, outcome := store.StatusComplete, error(nil)
	clientGone := ctx.Err() != nil || l.err != nil
	switch {
	case (retrErr != nil || genErr != nil) && clientGone:
		status, outcome = store.StatusIncomplete, ErrClientGone
	case retrErr != nil:
		status, outcome = store.StatusFailed, fmt.Errorf("%w: %w", ErrRetrievalFailed, retrErr)
	case genErr != nil:
		status, outcome = store.StatusFailed, fmt.Errorf("%w: %w", ErrModelFailed, genErr)
	}
	s.metrics.observe(status, clientGone, retrErr == nil, retrErr, genErr)
	if status == store.StatusFailed {
		s.log.Warn("chat answer failed", "conversation_id", conversationID, "message_id", answerID, "error", outcome.Error())
	}

	sources, err := json.Marshal(t.Sources)
	if err != nil {
		return t, fmt.Errorf("%w: encode sources: %w", ErrAnswerNotStored, err)
	}
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	saved, err := s.store.AddMessages(saveCtx, userID, conversationID, store.NewMessage{
		ID: answerID, Role: store.RoleAssistant, Content: res.Text, Sources: sources,
		AgentType: s.engine.Generator.AgentType(), Status: status, Model: res.Model,
		PromptTokens: res.Usage.PromptTokens, CompletionTokens: res.Usage.CompletionTokens,
	})
	if err != nil {
		s.log.Error("store chat answer", "conversation_id", conversationID, "message_id", answerID, "error", err.Error())
		return t, fmt.Errorf("%w: %w", ErrAnswerNotStored, err)
	}
	t.Answer = saved[0]
	return t, outcome
}

// Rate records userID's rating ("up" or "down") of an answer, with an
// optional comment; rating again replaces the earlier rating.
func (s *Service) Rate(ctx context.Context, userID, messageID, rating, comment string) (store.Feedback, error) {
	if err := ValidFeedback(rating, comment); err != nil {
		return store.Feedback{}, err
	}
	return s.store.SetFeedback(ctx, userID, messageID, rating, comment)
}

// ValidFeedback checks a rating ("up" or "down") and its comment's length.
func ValidFeedback(rating, comment string) error {
	if rating != store.RatingUp && rating != store.RatingDown {
		return &InvalidError{Message: fmt.Sprintf("rating must be %q or %q", store.RatingUp, store.RatingDown)}
	}
	if utf8.RuneCountInString(comment) > store.MaxCommentChars {
		return &InvalidError{Message: fmt.Sprintf("comment is longer than %d characters", store.MaxCommentChars)}
	}
	return nil
}
