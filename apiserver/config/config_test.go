package config_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/config"
)

func base() map[string]string {
	return map[string]string{
		"DATABASE_URL":    "postgres://app:s3cret@db:5432/chat?sslmode=disable",
		"BETTER_AUTH_URL": "https://auth.example.com",
	}
}

func TestDefaults(t *testing.T) {
	g := NewWithT(t)
	c, err := config.LoadFrom(config.FromMap(base()))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.JWKSURL).To(Equal("https://auth.example.com/api/auth/jwks"))
	g.Expect(c.Audience).To(Equal("https://auth.example.com"))
	g.Expect(c.Algorithms).To(Equal([]string{"EdDSA", "ES256", "ES512", "RS256", "PS256"}))
	g.Expect(c.ListenAddr).To(Equal(":8080"))
	g.Expect(c.MetricsAddr).To(Equal(":9090"))
	g.Expect(c.CORSAllowedOrigins).To(BeEmpty())
}

func TestOverrides(t *testing.T) {
	g := NewWithT(t)
	env := base()
	env["JWKS_URL"] = "http://auth.internal:3000/keys"
	env["BETTER_AUTH_AUDIENCE"] = "chat"
	env["JWT_ALGORITHMS"] = " RS256 ,EdDSA,RS256"
	env["CORS_ALLOWED_ORIGINS"] = "https://docs.example.com/, http://localhost:3000"
	env["LISTEN_ADDR"] = "127.0.0.1:18080"
	env["METRICS_ADDR"] = ":19090"
	c, err := config.LoadFrom(config.FromMap(env))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.JWKSURL).To(Equal("http://auth.internal:3000/keys"))
	g.Expect(c.Audience).To(Equal("chat"))
	g.Expect(c.Algorithms).To(Equal([]string{"RS256", "EdDSA"}))
	g.Expect(c.CORSAllowedOrigins).To(Equal([]string{"https://docs.example.com", "http://localhost:3000"}))
	g.Expect(c.ListenAddr).To(Equal("127.0.0.1:18080"))
	g.Expect(c.MetricsAddr).To(Equal(":19090"))
}

func TestErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		name, key, value string
	}{
		{"missing database", "DATABASE_URL", ""},
		{"malformed database", "DATABASE_URL", "postgres://app:s3cret@db:notaport/chat"},
		{"missing issuer", "BETTER_AUTH_URL", ""},
		{"relative issuer", "BETTER_AUTH_URL", "auth.example.com"},
		{"bad jwks url", "JWKS_URL", "ftp://x/keys"},
		{"symmetric algorithm", "JWT_ALGORITHMS", "HS256"},
		{"none algorithm", "JWT_ALGORITHMS", "none"},
		{"empty algorithms", "JWT_ALGORITHMS", ", ,"},
		{"origin with path", "CORS_ALLOWED_ORIGINS", "https://docs.example.com/app"},
		{"origin without scheme", "CORS_ALLOWED_ORIGINS", "docs.example.com"},
		{"listen without port", "LISTEN_ADDR", "localhost"},
		{"metrics bad port", "METRICS_ADDR", ":99999"},
		{"same addresses", "METRICS_ADDR", ":8080"},
		{"bad qdrant url", "QDRANT_URL", "qdrant:6333"},
		{"jwks refresh not a duration", "JWKS_REFRESH_INTERVAL", "often"},
		{"jwks refresh negative", "JWKS_REFRESH_INTERVAL", "-5s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			env := base()
			env[tc.key] = tc.value
			_, err := config.LoadFrom(config.FromMap(env))
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(HavePrefix(tc.key + ": "))
			g.Expect(err.Error()).NotTo(ContainSubstring("\n"))
			g.Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
		})
	}
}

func TestMigrateURLPrefersDirect(t *testing.T) {
	g := NewWithT(t)
	env := base()
	u, err := config.MigrateURL(config.FromMap(env))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u).To(Equal(env["DATABASE_URL"]))

	env["DATABASE_DIRECT_URL"] = "postgres://app@db-direct/chat"
	u, err = config.MigrateURL(config.FromMap(env))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u).To(Equal("postgres://app@db-direct/chat"))

	_, err = config.MigrateURL(config.FromMap(map[string]string{}))
	g.Expect(err).To(MatchError(HavePrefix("DATABASE_URL: ")))
	_, err = config.MigrateURL(config.FromMap(map[string]string{"DATABASE_DIRECT_URL": "postgres://x:secret@h:bad/db"}))
	g.Expect(err).To(MatchError(HavePrefix("DATABASE_DIRECT_URL: ")))
	g.Expect(strings.Contains(err.Error(), "secret")).To(BeFalse())
}
