package store_test

import (
	"context"
	"testing"

	"github.com/chatbackend/chatbackend/apiserver/store"
)

// BenchmarkStartTurn is a chat turn's start with its rate token as a
// statement and commit of its own (TakeRateToken, then StartTurn: what
// regenerate and /agents/run still do) and in the start's transaction
// (StartTurn's charge: posting a message), each in a new conversation.
func BenchmarkStartTurn(b *testing.B) {
	ctx := context.Background()
	s := newStoreTB(b)
	if err := s.SyncUser(ctx, "u", "", ""); err != nil {
		b.Fatal(err)
	}
	charge := &store.Charge{Budget: "chat", Limit: store.RateLimit{PerMinute: 1e6, Burst: 1_000_000}}
	for _, bc := range []struct {
		name  string
		start func(cid string) error
	}{
		{"token then start", func(cid string) error {
			if err := s.TakeRateToken(ctx, "u", charge.Budget, charge.Limit); err != nil {
				return err
			}
			_, _, err := s.StartTurn(ctx, "u", cid, nil, 20, "", turnMessages()...)
			return err
		}},
		{"token in the start", func(cid string) error {
			_, _, err := s.StartTurn(ctx, "u", cid, charge, 20, "", turnMessages()...)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			convs := make([]string, b.N)
			for i := range convs {
				c, err := s.CreateConversation(ctx, "u", "")
				if err != nil {
					b.Fatal(err)
				}
				convs[i] = c.ID
			}
			b.ResetTimer()
			for i := range b.N {
				if err := bc.start(convs[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
