package pgtest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatbackend/chatbackend/internal/pgtest"
	"github.com/chatbackend/chatbackend/internal/testca"
)

func connect(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// A TLS cluster takes verify-full connections that trust its CA, and
// refuses plain TCP and a client that trusts another CA.
func TestTLSClusterServesOnlyTLS(t *testing.T) {
	c := pgtest.NewTLSCluster(t, pgtest.TLSOptions{})
	dir := t.TempDir()
	ca := testca.WriteFile(t, dir, "ca.crt", c.CA.CertPEM, 0o644)
	other := testca.WriteFile(t, dir, "other.crt", testca.New(t, "other").CertPEM, 0o644)

	if err := connect(c.TCPURL() + "?sslmode=verify-full&sslrootcert=" + ca); err != nil {
		t.Fatalf("verify-full with the cluster's CA: %v", err)
	}
	if err := connect(c.TCPURL() + "?sslmode=disable"); err == nil || !strings.Contains(err.Error(), "no encryption") {
		t.Fatalf("plain TCP: want refused by pg_hba (no encryption), got %v", err)
	}
	if err := connect(c.TCPURL() + "?sslmode=verify-full&sslrootcert=" + other); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("verify-full with another CA: want an unknown authority, got %v", err)
	}
}

// With ClientCert, a TLS connection needs a client certificate of the
// cluster's CA naming the user.
func TestTLSClusterRequiresClientCert(t *testing.T) {
	c := pgtest.NewTLSCluster(t, pgtest.TLSOptions{ClientCert: true})
	dir := t.TempDir()
	ca := testca.WriteFile(t, dir, "ca.crt", c.CA.CertPEM, 0o644)
	base := c.TCPURL() + "?sslmode=verify-full&sslrootcert=" + ca

	if err := connect(base); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without a client certificate: want refused, got %v", err)
	}
	cert, key := c.ClientCert(t, dir, "postgres")
	if err := connect(base + "&sslcert=" + cert + "&sslkey=" + key); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
}
