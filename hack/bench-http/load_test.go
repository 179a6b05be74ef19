//go:build bench

package benchhttp

// The load generator: a fixed number of keep-alive connections, each
// sending its next request as soon as the last one is answered (closed
// loop, like wrk), for a fixed time.

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// request builds the i-th request of a scenario (i counts across all
// connections, so tokens rotate across the users).
type request func(i int64) (method, path, token, body string)

// result is what one run measured.
type result struct {
	requests int
	errors   int // answers with another status than the expected one
	elapsed  time.Duration
	lat      []time.Duration // sorted
	cpu      time.Duration   // the server process's CPU time over the run
	// dbCPU: the PostgreSQL cluster's over the run, the work the server's
	// statements gave it (the other server is idle meanwhile).
	dbCPU time.Duration
}

// add pools two runs.
func (r result) add(o result) result {
	lat := append(r.lat, o.lat...)
	slices.Sort(lat)
	return result{requests: r.requests + o.requests, errors: r.errors + o.errors, elapsed: r.elapsed + o.elapsed,
		lat: lat, cpu: r.cpu + o.cpu, dbCPU: r.dbCPU + o.dbCPU}
}

func (r result) perSecond() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r result) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))]
}

func (r result) cpuPerRequest() time.Duration { return r.perRequest(r.cpu) }

func (r result) dbCPUPerRequest() time.Duration { return r.perRequest(r.dbCPU) }

func (r result) perRequest(d time.Duration) time.Duration {
	if r.requests == 0 {
		return 0
	}
	return d / time.Duration(r.requests)
}

// drive sends req over conns connections to base for d and reports what
// the clients saw. Answers other than want count as errors.
func drive(base string, conns int, d time.Duration, want int, req request) result {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true,
	}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	var errs atomic.Int64
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(stop) {
				method, path, token, body := req(next.Add(1))
				var rd io.Reader
				if body != "" {
					rd = strings.NewReader(body)
				}
				hr, err := http.NewRequest(method, base+path, rd)
				if err != nil {
					panic(err)
				}
				if token != "" {
					hr.Header.Set("Authorization", "Bearer "+token)
				}
				if body != "" {
					hr.Header.Set("Content-Type", "application/json")
				}
				t0 := time.Now()
				resp, err := client.Do(hr)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				if resp.StatusCode != want {
					errs.Add(1)
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(all)
	return result{requests: len(all), errors: int(errs.Load()), elapsed: time.Since(start), lat: all}
}
