package store_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/store"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

// IsUnavailable recognises what a real PostgreSQL answers when it cannot
// serve (so handlers say 503, retry later), and not what a reachable one
// answers to a bad query (500 or 4xx).
func TestIsUnavailableOnRealErrors(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	url := pgtest.New(t)
	connect := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, url)
		g.Expect(err).NotTo(HaveOccurred())
		t.Cleanup(func() { _ = c.Close(ctx) })
		return c
	}
	admin := connect()

	// Nothing listens: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	closed := ln.Addr().String()
	g.Expect(ln.Close()).To(Succeed())
	_, refused := pgx.Connect(ctx, "postgres://u:p@"+closed+"/db?connect_timeout=5")
	g.Expect(refused).To(HaveOccurred())

	// The server ends the session (57P01, as on shutdown).
	victim := connect()
	_, err = admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, victim.PgConn().PID())
	g.Expect(err).NotTo(HaveOccurred())
	_, terminated := victim.Exec(ctx, `SELECT 1`)
	g.Expect(terminated).To(HaveOccurred())
	// ...and the next query on that dead connection.
	_, dead := victim.Exec(ctx, `SELECT 1`)
	g.Expect(dead).To(HaveOccurred())

	// A query that does not answer in time.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, slow := connect().Exec(short, `SELECT pg_sleep(5)`)
	g.Expect(slow).To(HaveOccurred())

	for name, err := range map[string]error{"refused": refused, "terminated": terminated, "dead connection": dead, "timed out": slow} {
		g.Expect(store.IsUnavailable(err)).To(BeTrue(), "%s: %v", name, err)
	}

	_, syntax := admin.Exec(ctx, `SELEC 1`)
	_, nul := admin.Exec(ctx, `SELECT $1::text`, "a\x00b")
	var none int
	noRows := admin.QueryRow(ctx, `SELECT 1 WHERE false`).Scan(&none)
	for name, err := range map[string]error{"syntax": syntax, "NUL in text": nul, "no rows": noRows, "canceled": context.Canceled} {
		g.Expect(err).To(HaveOccurred(), name)
		g.Expect(store.IsUnavailable(err)).To(BeFalse(), "%s: %v", name, err)
	}
	g.Expect(store.IsUnavailable(nil)).To(BeFalse())
	g.Expect(store.IsUnavailable(errors.Join(errors.New("list conversations"), store.ErrUnavailable))).To(BeTrue())
}
