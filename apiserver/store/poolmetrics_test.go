package store_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

// The pool's metrics follow a real pool of one connection: an acquire
// that finds it taken waits and is counted as empty, with its wait; one
// whose context ends first is counted as canceled; the gauges say which
// connection is in use.
func TestPoolCollector(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	pool, err := store.Open(ctx, pgtest.New(t), store.Options{ConnectTimeout: 10 * time.Second, MaxConns: 1})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(pool.Close)
	reg := prometheus.NewRegistry()
	g.Expect(reg.Register(store.NewPoolCollector(pool))).To(Succeed())
	read := func() map[string]float64 {
		families, err := reg.Gather()
		g.Expect(err).NotTo(HaveOccurred())
		out := map[string]float64{}
		for _, f := range families {
			m := f.GetMetric()[0]
			out[f.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
		return out
	}
	before := read()
	g.Expect(before).To(HaveLen(13))
	g.Expect(before).To(HaveKeyWithValue(store.PoolMetricsPrefix+"max_connections", 1.0))

	held, err := pool.Acquire(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	busy := read()
	g.Expect(busy).To(HaveKeyWithValue(store.PoolMetricsPrefix+"acquired_connections", 1.0))
	g.Expect(busy).To(HaveKeyWithValue(store.PoolMetricsPrefix+"idle_connections", 0.0))
	g.Expect(busy).To(HaveKeyWithValue(store.PoolMetricsPrefix+"total_connections", 1.0))

	// Given up: the one connection stays taken past the acquire's deadline.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = pool.Acquire(short)
	g.Expect(err).To(HaveOccurred())

	// Waited for: released 50 ms after the acquire began.
	const hold = 50 * time.Millisecond
	release := time.AfterFunc(hold, held.Release)
	defer release.Stop()
	waited, err := pool.Acquire(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	waited.Release()

	after := read()
	delta := func(name string) float64 {
		return after[store.PoolMetricsPrefix+name] - before[store.PoolMetricsPrefix+name]
	}
	g.Expect(delta("canceled_acquires_total")).To(Equal(1.0))
	g.Expect(delta("acquires_total")).To(BeNumerically(">=", 2))
	g.Expect(delta("empty_acquires_total")).To(BeNumerically(">=", 1))
	g.Expect(delta("empty_acquire_wait_seconds_total")).To(BeNumerically(">=", (hold / 2).Seconds()))
	g.Expect(delta("acquire_duration_seconds_total")).To(BeNumerically(">=", delta("empty_acquire_wait_seconds_total")))
	g.Expect(after).To(HaveKeyWithValue(store.PoolMetricsPrefix+"acquired_connections", 0.0))
	g.Expect(after).To(HaveKeyWithValue(store.PoolMetricsPrefix+"idle_connections", 1.0))
	g.Expect(after[store.PoolMetricsPrefix+"new_connections_total"]).To(Equal(1.0))
}
