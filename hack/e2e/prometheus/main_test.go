//go:build e2e && linux

// Package prometheuse2e runs chat-apiserver against a real PostgreSQL and a
// real BetterAuth, lets a real Prometheus (Debian's prometheus binary) scrape
// it with the alert rules the operator installs (test-sized windows), then
// causes token failures, a JWKS outage, a database outage (5xx answers) and
// an API outage, and asks
// Prometheus's HTTP API for the counters and for the alerts going pending
// and firing.
//
//	go test -tags e2e -count=1 -v ./hack/e2e/prometheus/
//
// Needs: prometheus (hack/tools.sh prometheus), PostgreSQL server binaries,
// node and hack/betterauth/node_modules (make test-deps-apiserver).
// CHAT_APISERVER may name a built chat-apiserver; otherwise it is built.
package prometheuse2e

import (
	"testing"

	"github.com/chatbackend/chatbackend/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
