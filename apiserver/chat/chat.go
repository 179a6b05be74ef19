package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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
	// DefaultStopPoll is how often a streaming turn checks whether its
	// owner stopped it (see stopWatcher).
	DefaultStopPoll = 500 * time.Millisecond
)

// How a turn that did not complete ended. The answer is stored in every
// case; the text of each is what a client may be shown.
var (
	ErrClientGone      = errors.New("the client went away; the answer is stored as incomplete")
	ErrRetrievalFailed = errors.New("the documentation could not be searched")
	ErrModelFailed     = errors.New("the language model failed; the answer is incomplete")
	// ErrShuttingDown: the server cut the turn to shut down (see Cut).
	ErrShuttingDown = errors.New("the server is shutting down; the answer is stored as incomplete")
	// ErrAnswerNotStored wraps the store's error when the answer itself
	// could not be saved.
	ErrAnswerNotStored = errors.New("the answer could not be stored")
	// errStopped is the cause a turn's work is cancelled with when its
	// owner stops it; the turn itself then ends without an error.
	errStopped = errors.New("the answer was stopped")
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

// Flusher is a Sink that may hold deltas back to send several at once.
// The turn calls Flush whenever the generator is about to wait for the
// model (generate.Request.Waiting), and once generation ends: a delta is
// never held while the turn waits. An error means the client is gone, as
// from the Sink's methods.
type Flusher interface {
	Flush() error
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
	// Sources are the passages the answer cites, in citation order.
	Sources []rag.Source
	// Grounded: the answer draws on the documentation. False when nothing
	// relevant was found or the answer says the docs do not cover the
	// question; a client may then offer another way to get help.
	Grounded bool
	// Reason says why an answer is not grounded (ReasonNotCovered,
	// ReasonNoDocuments); empty when it is, or when the turn did not end.
	Reason string
}

// Why an answer is not grounded.
const (
	// ReasonNotCovered: the docs hold nothing relevant to the question.
	ReasonNotCovered = "not_covered"
	// ReasonNoDocuments: no document is indexed at all (nothing ingested
	// yet): not the question's fault, and no model is asked.
	ReasonNoDocuments = "no_documents"
)

// NoDocumentsAnswer is the answer while no document is indexed.
const NoDocumentsAnswer = "No documents are indexed yet, so there is nothing to answer from. Please ask again once the documentation has been ingested."

// Service runs chat turns on the store and the RAG engine.
type Service struct {
	store  *store.Store
	engine *rag.Engine
	log    *slog.Logger
	// metrics is nil until Instrument.
	metrics *metrics
	// cut is cancelled by Cut: the turns in progress stop generating.
	cut    context.Context
	cutNow context.CancelFunc
	// mu guards running, the turns in progress, and idle, closed (and
	// cleared) when running drops to zero while Wait waits.
	mu      sync.Mutex
	running int
	idle    chan struct{}
	// stops ends the turns their owners stopped (stopwatch.go).
	stops *stopWatcher
}

// New returns the service. logger nil means slog.Default().
func New(st *store.Store, engine *rag.Engine, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	cut, cutNow := context.WithCancel(context.Background())
	return &Service{store: st, engine: engine, log: logger, cut: cut, cutNow: cutNow,
		stops: newStopWatcher(st, logger, DefaultStopPoll)}
}

// Stop stops userID's answer messageID in conversationID while it streams,
// on whichever replica runs it: the answer ends within the stop poll and is
// stored as store.StatusStopped with the text produced so far. An answer
// that already ended is store.ErrFinished.
func (s *Service) Stop(ctx context.Context, userID, conversationID, messageID string) (store.Message, error) {
	return s.store.StopAnswer(ctx, userID, conversationID, messageID)
}

// Cut stops the turns in progress, for a shutdown that cannot wait for
// them any longer: each stops retrieving or generating, stores its answer
// as incomplete with the text produced so far, and returns
// ErrShuttingDown, so a streaming client is told why its answer ends.
func (s *Service) Cut() { s.cutNow() }

// Wait returns once no turn is in progress (every answer stored), or when
// ctx ends. The server closes the database pool only after it: a turn cut
// by the shutdown still needs the pool to store its answer.
func (s *Service) Wait(ctx context.Context) error {
	s.mu.Lock()
	if s.running == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("chat turns still in progress: %w", ctx.Err())
	}
}

// begin and end count a turn in progress.
func (s *Service) begin() {
	s.mu.Lock()
	s.running++
	s.mu.Unlock()
}

func (s *Service) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running--; s.running == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
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
// sink; see the package documentation for the steps. With charge not nil
// the turn spends a token of that budget of the user in the transaction
// that stores the question (store.StartTurn): over the limit it stores
// nothing and is a *store.RateLimitedError. On an error the Turn holds
// whatever was stored (the question always, once the conversation was
// found).
func (s *Service) Ask(ctx context.Context, userID, conversationID, question string, charge *store.Charge, sink Sink) (Turn, error) {
	q, err := ValidQuestion(question)
	if err != nil {
		return Turn{}, err
	}
	return s.ask(ctx, userID, conversationID, asking{text: q, charge: charge}, sink)
}

// Regenerate answers again the question userID's answer messageID in
// conversationID answered, reporting its progress to sink as Ask does. The
// new answer is a new message: the old one stays as it was, since its
// user saw it (and may have rated it). The question is not stored again,
// and the history is what preceded it. An answer still streaming is
// store.ErrStreaming.
func (s *Service) Regenerate(ctx context.Context, userID, conversationID, messageID string, sink Sink) (Turn, error) {
	q, err := s.store.QuestionOf(ctx, userID, conversationID, messageID)
	if err != nil {
		return Turn{}, err
	}
	return s.ask(ctx, userID, conversationID, asking{text: q.Content, stored: &q}, sink)
}

// asking is what a turn answers: a new question to store, or one stored
// before (stored set: the turn regenerates its answer); charge, when set,
// is the rate token its start spends.
type asking struct {
	text   string
	stored *store.Message
	charge *store.Charge
}

// Run answers question in conversationID, or in a new conversation titled
// from the question when conversationID is empty, reporting its progress
// to sink as Ask does.
func (s *Service) Run(ctx context.Context, userID, conversationID, question string, sink Sink) (Turn, error) {
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
	return s.ask(ctx, userID, conversationID, asking{text: q}, sink)
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

func (s *Service) ask(ctx context.Context, userID, conversationID string, asked asking, sink Sink) (Turn, error) {
	s.begin()
	defer s.end()
	q := asked.text
	t := Turn{ConversationID: conversationID, Sources: []rag.Source{}}
	history, question, answerID, err := s.start(ctx, userID, conversationID, asked)
	if err != nil {
		return t, err
	}
	t.Question = question
	l := &listener{}
	_ = l.note(sink.Started(Started{ConversationID: conversationID, UserMessageID: t.Question.ID, AnswerID: answerID}))

	// Retrieval and generation stop when the client leaves (ctx) or the
	// server cuts the turn (Cut); storing the answer does not.
	work, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	defer context.AfterFunc(s.cut, func() { stop(ErrShuttingDown) })()
	unwatch := s.stops.watch(answerID, stop)

	turns := generateTurns(history)
	retrieved, retrErr := s.engine.Retrieve(work, q, turns)
	if retrieved.Sources != nil {
		t.Sources = retrieved.Sources
	}
	var res generate.Result
	var genErr error
	if retrErr == nil {
		_ = l.note(sink.Sources(t.Sources))
		res, genErr = s.generate(work, q, turns, retrieved, sink, l)
		t.Sources, t.Grounded = cited(retrieved.Sources, res)
		t.Reason = reason(t.Grounded, retrieved.NoDocuments, genErr)
	}
	unwatch()

	clientGone := ctx.Err() != nil || l.err != nil
	cause := context.Cause(work)
	cut, userStopped := errors.Is(cause, ErrShuttingDown), errors.Is(cause, errStopped)
	status, outcome := ending(retrErr, genErr, cut, clientGone, userStopped)
	// A turn ended from outside says nothing about the dependencies.
	s.metrics.observe(status, clientGone || cut || userStopped, retrErr == nil, retrErr, genErr)
	if status == store.StatusFailed {
		s.log.Warn("chat answer failed", "conversation_id", conversationID, "message_id", answerID, "error", outcome.Error())
	}

	sources, err := json.Marshal(t.Sources)
	if err != nil {
		return t, fmt.Errorf("%w: encode sources: %w", ErrAnswerNotStored, err)
	}
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer cancel()
	saved, err := s.store.FinishAnswer(saveCtx, userID, store.NewMessage{
		ID: answerID, Role: store.RoleAssistant, Content: res.Text, Sources: sources,
		AgentType: s.engine.Generator.AgentType(), Status: status, Model: res.Model,
		PromptTokens: res.Usage.PromptTokens, CompletionTokens: res.Usage.CompletionTokens,
	})
	if err != nil {
		s.log.Error("store chat answer", "conversation_id", conversationID, "message_id", answerID, "error", err.Error())
		return t, fmt.Errorf("%w: %w", ErrAnswerNotStored, err)
	}
	t.Answer = saved
	return t, outcome
}

// start reads the history of the turn and stores its question (unless
// asked again) with its answer, as streaming, so that the answer's owner
// can stop it from any replica. It returns the history, the question and
// the answer's id.
func (s *Service) start(ctx context.Context, userID, conversationID string, asked asking) ([]store.Turn, store.Message, string, error) {
	before := ""
	if asked.stored != nil {
		before = asked.stored.ID
	}
	answerID := uuid.NewString()
	var msgs []store.NewMessage
	if asked.stored == nil {
		msgs = append(msgs, store.NewMessage{Role: store.RoleUser, Content: asked.text})
	}
	msgs = append(msgs, store.NewMessage{ID: answerID, Role: store.RoleAssistant, Status: store.StatusStreaming,
		AgentType: s.engine.Generator.AgentType()})
	// One transaction: the token, the history read before the question is
	// stored, the question and the answer.
	history, added, err := s.store.StartTurn(ctx, userID, conversationID, asked.charge, DefaultHistoryMessages, before, msgs...)
	if err != nil {
		return nil, store.Message{}, "", err
	}
	if asked.stored != nil {
		return history, *asked.stored, answerID, nil
	}
	return history, added[0], answerID, nil
}

// generateTurns is the history as retrieval and the generator take it.
func generateTurns(history []store.Turn) []generate.Turn {
	turns := make([]generate.Turn, len(history))
	for i, m := range history {
		turns[i] = generate.Turn{Role: m.Role, Content: m.Content}
	}
	return turns
}

// generate writes the answer to q from the retrieved passages, each piece
// to sink as it comes (noting in l a client gone). With no document
// indexed at all it says so without asking the model: there is nothing to
// ground an answer in.
func (s *Service) generate(ctx context.Context, q string, turns []generate.Turn, retrieved rag.Retrieved,
	sink Sink, l *listener) (generate.Result, error) {
	onDelta := func(d string) error { return l.note(sink.Delta(d)) }
	var waiting func()
	if f, ok := sink.(Flusher); ok {
		waiting = func() { _ = l.note(f.Flush()) }
		// What the generator gave last goes out now, not with the
		// answer's end event after its storage.
		defer waiting()
	}
	if retrieved.NoDocuments {
		return generate.Result{Text: NoDocumentsAnswer}, onDelta(NoDocumentsAnswer)
	}
	return s.engine.Generator.Generate(ctx, generate.Request{
		Question: q, History: turns, Passages: retrieved.Passages, Weights: retrieved.Weights, Waiting: waiting,
	}, onDelta)
}

// cited are the sources the answer cites, in citation order, and whether it
// is grounded in them.
func cited(sources []rag.Source, res generate.Result) ([]rag.Source, bool) {
	out := make([]rag.Source, 0, len(res.Cited))
	for _, i := range res.Cited {
		if i < len(sources) {
			out = append(out, sources[i])
		}
	}
	return out, res.Grounded && len(out) > 0
}

// reason is why an answer that ended is not grounded ("" when it is, or
// when generation failed).
func reason(grounded, noDocuments bool, genErr error) string {
	switch {
	case grounded || genErr != nil:
		return ""
	case noDocuments:
		return ReasonNoDocuments
	}
	return ReasonNotCovered
}

// ending is the status of an answer and the error its turn reports: what
// stopped retrieval or generation, if anything did. Its owner stopping it,
// the server cutting the turn, or the client leaving, explain a failure
// before the dependency does; a stop by its owner is no error.
func ending(retrErr, genErr error, cut, clientGone, userStopped bool) (status string, outcome error) {
	stopped := retrErr != nil || genErr != nil
	switch {
	case userStopped:
		return store.StatusStopped, nil
	case stopped && cut:
		return store.StatusIncomplete, ErrShuttingDown
	case stopped && clientGone:
		return store.StatusIncomplete, ErrClientGone
	case retrErr != nil:
		return store.StatusFailed, fmt.Errorf("%w: %w", ErrRetrievalFailed, retrErr)
	case genErr != nil:
		return store.StatusFailed, fmt.Errorf("%w: %w", ErrModelFailed, genErr)
	}
	return store.StatusComplete, nil
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
