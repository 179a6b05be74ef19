package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/chatbackend/chatbackend/apiserver/envvar"
)

// sslModes are libpq's (and pgx's) values of sslmode.
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// checkDatabaseTLS validates the libpq TLS variables (PGSSLMODE,
// PGSSLROOTCERT, PGSSLCERT, PGSSLKEY).
//
// Why validate what pgx reads by itself: pgx reads these variables from the
// process environment as the defaults of the connection string (so the
// URL's own sslmode or sslrootcert wins, as with libpq) and loads the files
// when the URL is parsed, but a missing or unreadable file then surfaces as
// a connection string that does not parse, an error that must not quote
// the URL (its password) and so cannot say which file. Checked here first,
// a bad mount fails start-up naming its variable and path.
func checkDatabaseTLS(get func(string) string) error {
	if m := get(envvar.DatabaseSSLMode); m != "" && !slices.Contains(sslModes, m) {
		return fmt.Errorf("%s: %q is not an sslmode (want one of %s)", envvar.DatabaseSSLMode, m, strings.Join(sslModes, ", "))
	}
	// "system" is pgx's (and libpq's) word for the system's roots.
	if root := get(envvar.DatabaseSSLRootCert); root != "" && root != "system" {
		data, err := os.ReadFile(root)
		if err != nil {
			return fmt.Errorf("%s: %w", envvar.DatabaseSSLRootCert, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(data) {
			return fmt.Errorf("%s: %s holds no PEM certificate", envvar.DatabaseSSLRootCert, root)
		}
	}
	cert, key := get(envvar.DatabaseSSLCert), get(envvar.DatabaseSSLKey)
	if cert == "" && key == "" {
		return nil
	}
	if cert == "" || key == "" {
		return fmt.Errorf("%s and %s: a client certificate needs both (got only one)", envvar.DatabaseSSLCert, envvar.DatabaseSSLKey)
	}
	certPEM, err := os.ReadFile(cert)
	if err != nil {
		return fmt.Errorf("%s: %w", envvar.DatabaseSSLCert, err)
	}
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		return fmt.Errorf("%s: %w", envvar.DatabaseSSLKey, err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("%s and %s: not a certificate and its private key in PEM: %w", envvar.DatabaseSSLCert, envvar.DatabaseSSLKey, err)
	}
	return nil
}

// checkTrustedCADirs validates SSL_CERT_DIR, which crypto/x509 reads by
// itself.
//
// Why the environment variable rather than a CA pool handed to each
// client: Go's crypto/x509 reads SSL_CERT_DIR when it first loads the
// system roots, which every TLS client of the process uses unless told
// otherwise, the JWKS fetch, the OpenAI SDK and Qdrant's gRPC client
// included. A pool passed explicitly reaches only the clients it is
// plumbed into, and a library that builds its own transport would miss
// it. SSL_CERT_DIR rather than SSL_CERT_FILE: on Linux the system bundle
// file (/etc/ssl/certs/ca-certificates.crt in the distroless image) is
// still loaded with SSL_CERT_DIR set, so the private CA is trusted in
// addition to the public roots, whereas SSL_CERT_FILE replaces that file
// and a public BetterAuth would stop verifying.
//
// Go skips a listed directory it cannot read; here each one must exist
// and hold a PEM certificate, so an empty or mistyped bundle fails start-up
// instead of every outbound call.
func checkTrustedCADirs(v string) error {
	for _, d := range strings.Split(v, ":") {
		if d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			return fmt.Errorf("%s: %q is not an absolute directory", envvar.TrustedCADir, d)
		}
		if err := holdsCertificate(d); err != nil {
			return fmt.Errorf("%s: %w", envvar.TrustedCADir, err)
		}
	}
	return nil
}

// holdsCertificate reports an error unless dir has a file with a PEM
// certificate in it, as crypto/x509 reads the directory: every entry,
// symlinks (a mounted Secret's or ConfigMap's keys) followed.
func holdsCertificate(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // a subdirectory, as x509 skips it
		}
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			if block.Type != "CERTIFICATE" {
				continue
			}
			if _, err := x509.ParseCertificate(block.Bytes); err == nil {
				return nil
			}
		}
	}
	return errors.New(dir + " holds no PEM certificate")
}
