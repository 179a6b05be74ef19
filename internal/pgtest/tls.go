package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/chatbackend/chatbackend/internal/testca"
)

// TLSOptions shape NewTLSCluster.
type TLSOptions struct {
	// ClientCert also requires a client certificate signed by the
	// cluster's CA whose common name is the user connecting
	// (clientcert=verify-full): see ClientCert.
	ClientCert bool
}

// TLSCluster is a cluster of one test's own that takes TCP connections only
// over TLS (hostssl in pg_hba.conf), with a server certificate for
// 127.0.0.1 and localhost signed by CA.
type TLSCluster struct {
	Cluster
	// CA signed the server's certificate (and ClientCert's).
	CA *testca.CA
}

// NewTLSCluster starts a throwaway TLS cluster, stopped and removed when t
// ends. Like NewCluster it ignores DATABASE_URL.
func NewTLSCluster(t testing.TB, opts TLSOptions) *TLSCluster {
	t.Helper()
	ca := testca.New(t, "pgtest CA")
	certPEM, keyPEM := ca.Issue(t, "localhost", "127.0.0.1", "localhost")
	c, err := startCluster(false, &serverTLS{caPEM: ca.CertPEM, certPEM: certPEM, keyPEM: keyPEM, clientCert: opts.ClientCert})
	if err != nil {
		t.Fatalf("pgtest: start PostgreSQL with TLS: %v", err)
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("pgtest: stop PostgreSQL: %v", err)
		}
	})
	return &TLSCluster{Cluster: Cluster{c: c}, CA: ca}
}

// TCPURL is the cluster's postgres database, as its superuser, over TCP
// with no sslmode: the caller adds the TLS parameters it tests.
func (c *TLSCluster) TCPURL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", c.c.port)
}

// ClientCert writes a client certificate of user signed by the cluster's
// CA, and its key (mode 0600, as libpq wants it), into dir.
func (c *TLSCluster) ClientCert(t testing.TB, dir, user string) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := c.CA.Issue(t, user)
	return testca.WriteFile(t, dir, "client.crt", certPEM, 0o644), testca.WriteFile(t, dir, "client.key", keyPEM, 0o600)
}

// serverTLS is what a TLS cluster serves with, in PEM.
type serverTLS struct {
	caPEM, certPEM, keyPEM []byte
	clientCert             bool
}

// install writes the certificates into dir, owned by the server's user
// (PostgreSQL refuses a key file others may read), and a pg_hba.conf that
// takes TCP connections only over TLS. The Unix socket stays open to the
// harness (adminURL).
func (s *serverTLS) install(dir, data string, cred *syscall.Credential) error {
	hba := "hostssl all all 127.0.0.1/32 trust\n"
	if s.clientCert {
		hba = "hostssl all all 127.0.0.1/32 trust clientcert=verify-full\n"
	}
	files := []struct {
		path string
		data []byte
	}{
		{filepath.Join(dir, "ca.crt"), s.caPEM},
		{filepath.Join(dir, "server.crt"), s.certPEM},
		{filepath.Join(dir, "server.key"), s.keyPEM},
		{filepath.Join(data, "pg_hba.conf"), []byte("local all all trust\n" + hba)},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
		if cred != nil {
			if err := os.Chown(f.path, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("chown %s: %w", f.path, err)
			}
		}
	}
	return nil
}

// settings are the postgres flags that turn TLS on.
func (s *serverTLS) settings(dir string) []string {
	return []string{
		"-c", "ssl=on",
		"-c", "ssl_cert_file=" + filepath.Join(dir, "server.crt"),
		"-c", "ssl_key_file=" + filepath.Join(dir, "server.key"),
		"-c", "ssl_ca_file=" + filepath.Join(dir, "ca.crt"),
	}
}
