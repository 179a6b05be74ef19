package cli_test

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/internal/pgtest"
	"github.com/chatbackend/chatbackend/internal/testca"
)

// migrate against a PostgreSQL that takes only TLS, configured as the
// operator configures the pods for spec.database.tls: libpq's PGSSL*
// variables naming the mounted files, the URL's sslmode deciding.
func TestMigrateOverTLS(t *testing.T) {
	c := pgtest.NewTLSCluster(t, pgtest.TLSOptions{})
	dir := t.TempDir()
	ca := testca.WriteFile(t, dir, "ca.crt", c.CA.CertPEM, 0o644)
	otherCA := testca.WriteFile(t, dir, "other.crt", testca.New(t, "another CA").CertPEM, 0o644)

	for _, tc := range []struct {
		name string
		url  string
		env  map[string]string
		err  string // "" when migrate succeeds
	}{
		{name: "verify-full with the CA", url: "?sslmode=verify-full", env: map[string]string{envvar.DatabaseSSLRootCert: ca}},
		{name: "verify-full without the CA", url: "?sslmode=verify-full", err: "certificate signed by unknown authority"},
		{name: "PGSSLMODE when the URL names no sslmode", url: "",
			env: map[string]string{envvar.DatabaseSSLMode: "verify-full"}, err: "certificate signed by unknown authority"},
		{name: "verify-full with another CA", url: "?sslmode=verify-full", env: map[string]string{envvar.DatabaseSSLRootCert: otherCA},
			err: "certificate signed by unknown authority"},
		{name: "the URL's sslmode wins over PGSSLMODE", url: "?sslmode=disable",
			env: map[string]string{envvar.DatabaseSSLMode: "verify-full", envvar.DatabaseSSLRootCert: ca}, err: "no encryption"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			clearEnv(t)
			t.Setenv(envvar.DatabaseURL, c.TCPURL()+tc.url)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, out, errOut := run("migrate", "--connect-timeout=30s")
			if tc.err == "" {
				g.Expect(code).To(Equal(0), errOut)
				g.Expect(out).To(ContainSubstring("applied 00001_init.sql"))
				return
			}
			g.Expect(code).To(Equal(1))
			g.Expect(errOut).To(ContainSubstring(tc.err))
			// Refused at once, not retried until the connect timeout: no
			// waiting fixes a certificate.
			g.Expect(errOut).NotTo(ContainSubstring("gave up after"))
		})
	}
}

// With a PostgreSQL that requires client certificates, PGSSLCERT and
// PGSSLKEY (a kubernetes.io/tls Secret's tls.crt and tls.key) get in.
func TestMigrateWithAClientCertificate(t *testing.T) {
	c := pgtest.NewTLSCluster(t, pgtest.TLSOptions{ClientCert: true})
	dir := t.TempDir()
	ca := testca.WriteFile(t, dir, "ca.crt", c.CA.CertPEM, 0o644)
	cert, key := c.ClientCert(t, dir, "postgres")

	g := NewWithT(t)
	clearEnv(t)
	t.Setenv(envvar.DatabaseURL, c.TCPURL()+"?sslmode=verify-full")
	t.Setenv(envvar.DatabaseSSLRootCert, ca)
	code, _, errOut := run("migrate", "--connect-timeout=30s")
	g.Expect(code).To(Equal(1), "migrated without a client certificate")
	g.Expect(errOut).To(ContainSubstring("certificate"))
	g.Expect(errOut).NotTo(ContainSubstring("gave up after"))

	t.Setenv(envvar.DatabaseSSLCert, cert)
	t.Setenv(envvar.DatabaseSSLKey, key)
	code, out, errOut := run("migrate", "--connect-timeout=30s")
	g.Expect(code).To(Equal(0), errOut)
	g.Expect(out).To(ContainSubstring("applied"))
}
