package config_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/auth"
	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/internal/testca"
)

// tlsFiles writes a CA and a client certificate and key it signed.
func tlsFiles(t *testing.T) (dir, ca, cert, key string) {
	t.Helper()
	dir = t.TempDir()
	c := testca.New(t, "database CA")
	certPEM, keyPEM := c.Issue(t, "app")
	return dir, testca.WriteFile(t, dir, "ca.crt", c.CertPEM, 0o644),
		testca.WriteFile(t, dir, "tls.crt", certPEM, 0o644), testca.WriteFile(t, dir, "tls.key", keyPEM, 0o600)
}

// The database TLS variables are checked before anything connects, each
// error naming the variable; `migrate` checks them too.
func TestDatabaseTLSVariables(t *testing.T) {
	dir, ca, cert, key := tlsFiles(t)
	garbage := testca.WriteFile(t, dir, "garbage", []byte("not a certificate"), 0o644)
	for _, tc := range []struct {
		name string
		env  map[string]string
		err  string // "" when valid
	}{
		{"a CA and a client certificate", map[string]string{envvar.DatabaseSSLMode: "verify-full",
			envvar.DatabaseSSLRootCert: ca, envvar.DatabaseSSLCert: cert, envvar.DatabaseSSLKey: key}, ""},
		{"the system roots", map[string]string{envvar.DatabaseSSLRootCert: "system"}, ""},
		{"an unknown sslmode", map[string]string{envvar.DatabaseSSLMode: "verify"}, "PGSSLMODE: \"verify\" is not an sslmode"},
		{"a missing CA file", map[string]string{envvar.DatabaseSSLRootCert: dir + "/missing.crt"}, "PGSSLROOTCERT: open " + dir + "/missing.crt: no such file"},
		{"a CA file without a certificate", map[string]string{envvar.DatabaseSSLRootCert: garbage}, "PGSSLROOTCERT: " + garbage + " holds no PEM certificate"},
		{"a certificate without its key", map[string]string{envvar.DatabaseSSLCert: cert}, "PGSSLCERT and PGSSLKEY: a client certificate needs both"},
		{"a missing key file", map[string]string{envvar.DatabaseSSLCert: cert, envvar.DatabaseSSLKey: dir + "/missing.key"}, "PGSSLKEY: open"},
		{"a key that is not one", map[string]string{envvar.DatabaseSSLCert: cert, envvar.DatabaseSSLKey: garbage}, "PGSSLCERT and PGSSLKEY: not a certificate and its private key"},
		{"a key of another certificate", map[string]string{envvar.DatabaseSSLCert: ca, envvar.DatabaseSSLKey: key}, "PGSSLCERT and PGSSLKEY: not a certificate and its private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			env := base()
			for k, v := range tc.env {
				env[k] = v
			}
			_, serveErr := config.LoadFrom(config.FromMap(env))
			_, migrateErr := config.MigrateURL(config.FromMap(env))
			if tc.err == "" {
				g.Expect(serveErr).NotTo(HaveOccurred())
				g.Expect(migrateErr).NotTo(HaveOccurred())
				return
			}
			g.Expect(serveErr).To(MatchError(HavePrefix(tc.err)))
			g.Expect(migrateErr).To(MatchError(HavePrefix(tc.err)))
		})
	}
}

// SSL_CERT_DIR must list absolute directories that each hold a PEM
// certificate: Go would skip a bad one silently, and every outbound call
// would then fail instead of start-up.
func TestTrustedCADirVariable(t *testing.T) {
	dir, _, _, _ := tlsFiles(t)
	empty := t.TempDir()
	for value, want := range map[string]string{
		dir:                       "",
		"/etc/ssl/certs:" + dir:   "",
		"certs":                   `SSL_CERT_DIR: "certs" is not an absolute directory`,
		empty:                     "SSL_CERT_DIR: " + empty + " holds no PEM certificate",
		dir + ":" + dir + "/nope": "SSL_CERT_DIR: open " + dir + "/nope: no such file",
	} {
		t.Run(value, func(t *testing.T) {
			if _, err := os.Stat("/etc/ssl/certs"); err != nil && value == "/etc/ssl/certs:"+dir {
				t.Skip("no /etc/ssl/certs on this machine")
			}
			g := NewWithT(t)
			env := base()
			env[envvar.TrustedCADir] = value
			_, err := config.LoadFrom(config.FromMap(env))
			if want == "" {
				g.Expect(err).NotTo(HaveOccurred())
			} else {
				g.Expect(err).To(MatchError(HavePrefix(want)))
			}
		})
	}
}

// trustedCAChildEnv makes the test binary run TestTrustedCAChild's body:
// Go loads the system roots, SSL_CERT_DIR included, once per process, so
// each trust setting needs a process of its own.
const trustedCAChildEnv = "CHATBACKEND_TRUSTED_CA_CHILD_JWKS_URL"

// A JWKS served over HTTPS with a certificate of a private CA is fetched
// when SSL_CERT_DIR names a directory holding that CA, as the operator
// mounts spec.trustedCA, and refused otherwise, by the verifier `serve`
// builds, with its default HTTP client.
func TestTrustedCAReachesTheJWKSFetch(t *testing.T) {
	ca := testca.New(t, "private CA")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks(t))
	}))
	srv.TLS = ca.ServerTLS(t, "127.0.0.1")
	srv.StartTLS()
	defer srv.Close()

	bundle := t.TempDir()
	testca.WriteFile(t, bundle, "ca.crt", ca.CertPEM, 0o644)
	other := t.TempDir()
	testca.WriteFile(t, other, "ca.crt", testca.New(t, "another CA").CertPEM, 0o644)

	for _, tc := range []struct {
		name, certDir string
		fetched       bool
	}{
		{"with the CA in SSL_CERT_DIR", bundle, true},
		{"without SSL_CERT_DIR", "", false},
		{"with another CA in SSL_CERT_DIR", other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestTrustedCAChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), trustedCAChildEnv+"="+srv.URL+"/jwks", envvar.TrustedCADir+"="+tc.certDir,
				// The system bundle file must not decide: only the CA counts.
				"SSL_CERT_FILE="+filepath.Join(t.TempDir(), "none"))
			out, err := cmd.CombinedOutput()
			if tc.fetched {
				NewWithT(t).Expect(err).NotTo(HaveOccurred(), "%s", out)
			} else {
				NewWithT(t).Expect(err).To(HaveOccurred(), "fetched without trusting the CA")
				NewWithT(t).Expect(string(out)).To(ContainSubstring("certificate signed by unknown authority"))
			}
		})
	}
}

// TestTrustedCAChild is the child process of TestTrustedCAReachesTheJWKSFetch:
// it loads the configuration (which checks SSL_CERT_DIR) and waits for the
// verifier's first JWKS fetch.
func TestTrustedCAChild(t *testing.T) {
	jwksURL := os.Getenv(trustedCAChildEnv)
	if jwksURL == "" {
		t.Skip("the child of TestTrustedCAReachesTheJWKSFetch")
	}
	env := base()
	env[envvar.JWKSURL] = jwksURL
	env[envvar.TrustedCADir] = os.Getenv(envvar.TrustedCADir)
	cfg, err := config.LoadFrom(config.FromMap(env))
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.New(context.Background(), auth.Options{JWKSURL: cfg.JWKSURL, Issuer: cfg.BetterAuthURL})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// Until the first fetch succeeded or failed (Ready then wraps why).
	deadline := time.Now().Add(auth.FetchTimeout)
	err = v.Ready()
	for err != nil && errors.Unwrap(err) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		err = v.Ready()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// jwks is a JWKS with one Ed25519 key.
func jwks(t *testing.T) []byte {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Error(err)
	}
	return fmt.Appendf(nil, `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"k1","x":%q}]}`,
		base64.RawURLEncoding.EncodeToString(pub))
}
