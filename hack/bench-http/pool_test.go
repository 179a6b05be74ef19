//go:build bench

package benchhttp

import (
	"fmt"

	"github.com/chatbackend/chatbackend/apiserver/store"
)

// poolPerStart says what a level's n starts waited for chat-apiserver's
// database pool (store.PoolCollector) between the scrapes base and mid:
// acquires, acquire time and acquires that found no idle connection, per
// start. Taken before any stream ends, it is the starts' alone (and the
// stop watcher's polls): where a start's time goes that a CPU profile
// cannot show, since a start waiting for a connection does not run.
func poolPerStart(n int, base, mid map[string]float64) string {
	per := func(name string) float64 {
		return (mid[store.PoolMetricsPrefix+name] - base[store.PoolMetricsPrefix+name]) / float64(max(1, n))
	}
	return fmt.Sprintf("  %d streams, database pool per start: %.1f acquires, %.2f ms acquiring, %.2f found none idle\n", n,
		per("acquires_total"), 1e3*per("acquire_duration_seconds_total"), per("empty_acquires_total"))
}
