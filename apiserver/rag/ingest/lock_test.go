package ingest

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/store/storetest"
)

// A run in progress holds the lock: another waits for it, boundedly, and
// gets it once it is released within the bound (how soon after the
// release is not measured).
func TestLockWaitsBoundedly(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool := storetest.Open(t)
	unlock, err := Lock(ctx, pool, time.Second)
	g.Expect(err).NotTo(HaveOccurred())

	_, err = Lock(ctx, pool, 200*time.Millisecond)
	g.Expect(err).To(MatchError(ErrLocked))
	g.Expect(err).To(MatchError(ContainSubstring("another ingest run is in progress: waited 200ms")))

	// Released while the next run waits: it goes on.
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(300 * time.Millisecond)
		unlock()
	}()
	unlock, err = Lock(ctx, pool, time.Minute)
	g.Expect(err).NotTo(HaveOccurred())
	<-released
	// It holds the lock: another session cannot take it.
	conn, err := pool.Acquire(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Release()
	var free bool
	g.Expect(conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockID).Scan(&free)).To(Succeed())
	g.Expect(free).To(BeFalse())
	unlock()
	g.Expect(conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockID).Scan(&free)).To(Succeed())
	g.Expect(free).To(BeTrue())
	_, err = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockID)
	g.Expect(err).NotTo(HaveOccurred())

	// A wait beyond lock_timeout's range (2^31-1 ms) is clamped, not
	// refused.
	unlock, err = Lock(ctx, pool, 1000*24*time.Hour)
	g.Expect(err).NotTo(HaveOccurred())
	unlock()
}
