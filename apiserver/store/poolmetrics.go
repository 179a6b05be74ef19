package store

// The connection pool's own statistics (pgxpool.Stat) as Prometheus
// metrics: whether requests wait for a connection, how long, and how full
// the pool is. Every request of the API server goes through the pool, so a
// pool too small for the load shows here first (latency that no statement
// explains, on a database that is not busy).

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// PoolMetricsPrefix starts the name of every pool metric.
const PoolMetricsPrefix = "chatbackend_db_pool_"

// poolMetric is one series of the collector: its description, type and how
// its value is read from a snapshot of the pool's statistics.
type poolMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*pgxpool.Stat) float64
}

// PoolCollector exports a pool's statistics, read at each scrape. Written
// here rather than taken from a library: the one collector for pgxpool
// (IBM/pgxpoolprometheus) names its series pgxpool_*, counts time in
// nanoseconds and its counters without _total; operators' dashboards expect
// seconds and _total (as client_golang's own collector for database/sql,
// go_sql_*, does), under the server's chatbackend_ prefix.
type PoolCollector struct {
	pool    *pgxpool.Pool
	metrics []poolMetric
}

// NewPoolCollector returns the collector of pool's statistics.
func NewPoolCollector(pool *pgxpool.Pool) *PoolCollector {
	m := func(name, help string, kind prometheus.ValueType, value func(*pgxpool.Stat) float64) poolMetric {
		return poolMetric{desc: prometheus.NewDesc(PoolMetricsPrefix+name, help, nil, nil), kind: kind, value: value}
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	return &PoolCollector{pool: pool, metrics: []poolMetric{
		m("max_connections", "Most connections the pool opens (DATABASE_MAX_CONNS).", gauge,
			func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }),
		m("total_connections", "Connections the pool holds now: acquired, idle and being opened.", gauge,
			func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }),
		m("acquired_connections", "Connections in use by a request now.", gauge,
			func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }),
		m("idle_connections", "Connections open and unused now.", gauge,
			func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }),
		m("constructing_connections", "Connections being opened now.", gauge,
			func(s *pgxpool.Stat) float64 { return float64(s.ConstructingConns()) }),
		m("acquires_total", "Connections handed out by the pool.", counter,
			func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }),
		m("acquire_duration_seconds_total", "Time the acquires counted in acquires_total took, in total (idle connection taken at once, or waited for).", counter,
			func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }),
		m("empty_acquires_total", "Acquires that found no idle connection and waited for one to be released or opened.", counter,
			func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }),
		m("empty_acquire_wait_seconds_total", "Time the acquires counted in empty_acquires_total waited, in total.", counter,
			func(s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() }),
		m("canceled_acquires_total", "Acquires given up before a connection came: the request ended or DATABASE_ACQUIRE_TIMEOUT passed.", counter,
			func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) }),
		m("new_connections_total", "Connections opened.", counter,
			func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) }),
		m("max_lifetime_closed_total", "Connections closed for having reached their maximum lifetime.", counter,
			func(s *pgxpool.Stat) float64 { return float64(s.MaxLifetimeDestroyCount()) }),
		m("max_idle_closed_total", "Connections closed for having been idle too long.", counter,
			func(s *pgxpool.Stat) float64 { return float64(s.MaxIdleDestroyCount()) }),
	}}
}

// Describe sends the descriptions of the pool's series.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

// Collect sends the pool's statistics, all from one snapshot.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
}
