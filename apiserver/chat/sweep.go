package chat

import (
	"context"
	"time"
)

// The sweep of answers a dead replica left streaming.
const (
	// SweepEvery is how often each replica sweeps (it also sweeps at
	// start-up, which is when a crash is most recent).
	SweepEvery = time.Minute
	// sweepBatch bounds one statement of a sweep and sweepMaxBatches the
	// statements of one sweep: a backlog left by a large crash drains over a
	// few sweeps instead of in one long transaction.
	sweepBatch      = 500
	sweepMaxBatches = 20
	// sweepMargin is added to the longest a live turn can last, so that a
	// turn saving its answer at its deadline is never swept.
	sweepMargin = time.Minute
)

// AbandonedAfter is the age past which an answer still streaming has no
// replica behind it: a turn lasts at most its request's deadline
// (chatTimeout, HTTP_CHAT_TIMEOUT), then stores its answer within
// saveTimeout.
func AbandonedAfter(chatTimeout time.Duration) time.Duration {
	return chatTimeout + saveTimeout + sweepMargin
}

// SweepAbandoned marks as incomplete the answers left streaming by a
// replica that died mid-answer (killed, crashed, its node lost: nothing ran
// the turn's last step), once they are older than olderThan, keeping their
// content; it sweeps now and then every interval until ctx ends. Every
// replica sweeps: the statement is idempotent and skips rows another
// writer holds. Without it such an answer would show as in progress, and
// stoppable, forever.
func (s *Service) SweepAbandoned(ctx context.Context, olderThan, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sweep(ctx, olderThan)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) sweep(ctx context.Context, olderThan time.Duration) {
	var total int64
	for range sweepMaxBatches {
		n, err := s.store.AbandonStreaming(ctx, olderThan, sweepBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("sweep of abandoned streaming answers failed; retrying at the next sweep", "error", err.Error())
			}
			break
		}
		total += n
		if n < sweepBatch {
			break
		}
	}
	if total > 0 {
		s.log.Info("answers left streaming by a stopped replica marked incomplete", "count", total, "older_than", olderThan.String())
	}
}
