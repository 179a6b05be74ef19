package ingest_test

import (
	"testing"

	"github.com/chatbackend/chatbackend/internal/pgtest"
)

// The growth benchmark ingests into a real PostgreSQL; Main stops the
// cluster it starts.
func TestMain(m *testing.M) { pgtest.Main(m) }
