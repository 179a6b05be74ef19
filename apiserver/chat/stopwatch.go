package chat

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/chatbackend/chatbackend/apiserver/store"
)

// stopWatcher ends the turns whose owners stopped them (Service.Stop, on
// any replica): every poll interval, one query asks which of this
// replica's streaming answers are stopped, and those turns are cancelled
// with errStopped.
//
// Why a poll of the rows rather than LISTEN/NOTIFY: the stop may arrive on
// any replica, and LISTEN needs a session held open on a direct connection
// per replica, which a transaction-mode pooler in front of PostgreSQL (a
// setup the store supports) does not give. Why one query for all the
// turns rather than one per turn: at 2,000 open streams a lookup each
// every 500 ms was 4,000 queries a second through the pool new turns need
// to start (make bench-stream); one indexed `id = ANY` lookup per interval
// costs the same with 1 turn or 2,000. A failed poll is retried at the
// next tick: it must not end an answer nobody stopped.
type stopWatcher struct {
	store *store.Store
	log   *slog.Logger
	every time.Duration

	// mu guards watched, the running turns' cancel functions by answer
	// id, and polling, whether the poll loop runs (it ends when no turn
	// is left, so an idle replica sends no query).
	mu      sync.Mutex
	watched map[string]context.CancelCauseFunc
	polling bool
}

func newStopWatcher(st *store.Store, logger *slog.Logger, every time.Duration) *stopWatcher {
	return &stopWatcher{store: st, log: logger, every: every, watched: map[string]context.CancelCauseFunc{}}
}

// watch cancels a turn with errStopped once its answer answerID is
// stopped, until the returned function is called: after it returns, stop
// is never called.
func (w *stopWatcher) watch(answerID string, stop context.CancelCauseFunc) (unwatch func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.watched[answerID] = stop
	if !w.polling {
		w.polling = true
		go w.poll()
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.watched, answerID)
	}
}

func (w *stopWatcher) poll() {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for range t.C {
		w.mu.Lock()
		if len(w.watched) == 0 {
			w.polling = false
			w.mu.Unlock()
			return
		}
		ids := slices.Collect(maps.Keys(w.watched))
		w.mu.Unlock()

		// Bounded: a database that does not answer delays stops, never
		// the turns themselves.
		ctx, cancel := context.WithTimeout(context.Background(), stopQueryTimeout)
		stopped, err := w.store.StoppedAnswers(ctx, ids)
		cancel()
		if err != nil {
			w.log.Warn("check whether answers were stopped", "answers", len(ids), "error", err.Error())
			continue
		}
		w.mu.Lock()
		for _, id := range stopped {
			if stop, ok := w.watched[id]; ok {
				stop(errStopped)
				delete(w.watched, id)
			}
		}
		w.mu.Unlock()
	}
}

// stopQueryTimeout bounds one poll's query.
const stopQueryTimeout = 5 * time.Second
