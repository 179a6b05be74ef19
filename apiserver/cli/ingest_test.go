package cli_test

// Tests of `chat-apiserver ingest`.

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

func clearRAGEnv(t *testing.T) {
	clearEnv(t)
	for _, k := range []string{"QDRANT_URL", "QDRANT_API_KEY", "QDRANT_COLLECTION", "QDRANT_HYBRID", "OPENAI_API_KEY",
		"OPENAI_BASE_URL", "OPENAI_CHAT_MODEL", "OPENAI_EMBEDDING_MODEL", "RAG_TOP_K", "RAG_HISTORY_TOKENS", envvar.IngestSources} {
		t.Setenv(k, "")
	}
}

func TestIngestIntoPostgres(t *testing.T) {
	g := NewWithT(t)
	clearRAGEnv(t)
	db := pgtest.New(t)
	t.Setenv("DATABASE_URL", db)

	code, _, stderr := run("ingest", "--docs", "../rag/testdata/docs", "--site-url", "https://docs.acme.example")
	g.Expect(code).To(Equal(1))
	g.Expect(stderr).To(ContainSubstring("run `chat-apiserver migrate` first"))

	code, _, stderr = run("migrate")
	g.Expect(code).To(Equal(0), stderr)
	code, out, stderr := run("ingest", "--docs", "../rag/testdata/docs", "--site-url", "https://docs.acme.example")
	g.Expect(code).To(Equal(0), stderr)
	g.Expect(out).To(MatchRegexp(`ingest: 6 pages, \d+ chunks: \d+ added, 0 updated, 0 unchanged, 0 removed, 0 skipped, 0 errors`))
	code, out, _ = run("ingest", "--docs", "../rag/testdata/docs", "--site-url", "https://docs.acme.example")
	g.Expect(code).To(Equal(0))
	g.Expect(out).To(MatchRegexp(`ingest: 6 pages, \d+ chunks: 0 added, 0 updated, \d+ unchanged, 0 removed, 0 skipped, 0 errors`))

	conn, err := pgx.Connect(context.Background(), db)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close(context.Background())
	var url string
	g.Expect(conn.QueryRow(context.Background(), `SELECT url FROM rag_chunks WHERE heading = 'Signing key rotation'`).Scan(&url)).To(Succeed())
	g.Expect(url).To(Equal("https://docs.acme.example/docs/guides/auth-guide#signing-key-rotation"))

	// A page that cannot be parsed is reported and left out; only --strict
	// makes that an error.
	docs := t.TempDir()
	g.Expect(os.WriteFile(filepath.Join(docs, "ok.md"), []byte("# OK\n\nfine"), 0o644)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(docs, "bad.md"), []byte("---\ntitle: [broken\n---\n"), 0o644)).To(Succeed())
	code, out, stderr = run("ingest", "--docs", docs, "--site-url", "https://docs.acme.example")
	g.Expect(code).To(Equal(0), stderr)
	g.Expect(out).To(ContainSubstring("ingest: skipped page bad.md: front matter"))
	g.Expect(out).To(ContainSubstring("1 errors"))
	code, _, stderr = run("ingest", "--docs", docs, "--site-url", "https://docs.acme.example", "--strict")
	g.Expect(code).To(Equal(1))
	g.Expect(stderr).To(ContainSubstring("--strict: 1 page(s)"))

	// The other folder replaced the unnamed source's pages, the broken one
	// notwithstanding: only ok.md is left.
	rows, err := conn.Query(context.Background(), `SELECT DISTINCT doc_path FROM rag_chunks`)
	g.Expect(err).NotTo(HaveOccurred())
	paths, err := pgx.CollectRows(rows, pgx.RowTo[string])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(paths).To(Equal([]string{"ok.md"}))
}

func TestIngestRefusesBadInput(t *testing.T) {
	g := NewWithT(t)
	clearRAGEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ingest"}, "nothing to ingest: give --docs, --git or --site, or set INGEST_SOURCES"},
		{[]string{"ingest", "--site-url", "https://x.io"}, "--site-url: not with INGEST_SOURCES"},
		{[]string{"ingest", "--docs", "d", "--site", "https://x.io"}, "--docs and --site: give only one of --docs, --git and --site"},
		{[]string{"ingest", "--docs", "d", "--site-url", "https://x.io", "--ref", "main"}, "--ref: not with --docs"},
		{[]string{"ingest", "--site", "https://x.io", "--site-url", "https://x.io"}, "--site-url: not with --site"},
		{[]string{"ingest", "--site", "https://x.io", "--auth-dir", "/a"}, "--auth-dir: not with --site"},
		{[]string{"ingest", "--docs", "d", "--max-pages", "3"}, "--max-pages: not with --docs"},
		{[]string{"ingest", "--git", "https://git.x.io/r.git"}, "--site-url: required with --docs and --git"},
		{[]string{"ingest", "--site", "x.io"}, `--site: want the public http(s) URL of the docs site, got "x.io"`},
		{[]string{"ingest", "--docs", "../rag/testdata/docs", "--site-url", "x.io"}, "--site-url: want the public http(s) URL"},
		{[]string{"ingest", "--docs", "../rag/testdata/docs", "--site-url", "https://x.io"}, "DATABASE_URL: not set"},
	} {
		code, _, stderr := run(tc.args...)
		g.Expect(code).To(Equal(1), tc.want)
		g.Expect(stderr).To(ContainSubstring(tc.want))
	}
	t.Setenv(envvar.IngestSources, `[{"name":"a","site":{"url":"https://x.io"}},{"name":"a","site":{"url":"https://y.io"}}]`)
	code, _, stderr := run("ingest")
	g.Expect(code).To(Equal(1))
	g.Expect(stderr).To(ContainSubstring(`INGEST_SOURCES: source "a": listed twice`))
	t.Setenv(envvar.IngestSources, "")

	t.Setenv("QDRANT_URL", "qdrant:6334")
	code, _, stderr = run("ingest", "--docs", "../rag/testdata/docs", "--site-url", "https://x.io")
	g.Expect(code).To(Equal(1))
	g.Expect(stderr).To(ContainSubstring(`QDRANT_URL: "qdrant:6334" is not an absolute http(s) URL`))
}
