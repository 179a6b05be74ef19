package cli_test

// `chat-apiserver ingest` as the operator runs it: INGEST_SOURCES, the
// termination message, the advisory lock.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/source"
	"github.com/chatbackend/chatbackend/controllers/specs"
	"github.com/chatbackend/chatbackend/internal/gittest"
	"github.com/chatbackend/chatbackend/internal/pgtest"
)

// docsSite is a small published site with a sitemap.
func docsSite(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/sitemap.xml", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<urlset><url><loc>http://%s/handbook/</loc></url><url><loc>http://%s/handbook/oncall</loc></url></urlset>`, r.Host, r.Host)
	})
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("ETag", `"v1"`)
			fmt.Fprint(w, body)
		}
	}
	mux.HandleFunc("/handbook/", page(`<nav>menu</nav><main><h1>Handbook</h1><p>Welcome aboard.</p><h2 id="vacation">Vacation</h2><p>Ask two weeks ahead.</p></main>`))
	mux.HandleFunc("/handbook/oncall", page(`<main><h1>On-call</h1><h2 id="pager">Pager</h2><p>Acknowledge within five minutes.</p></main>`))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func sourcesJSON(t *testing.T, specs ...source.Spec) string {
	b, err := json.Marshal(specs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readResult(t *testing.T, path string) source.Result {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r source.Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("termination message %q: %v", b, err)
	}
	if strings.Count(string(b), "\n") != 1 {
		t.Fatalf("termination message is not one line: %q", b)
	}
	return r
}

// chunksBySource counts the stored chunks of each source.
func chunksBySource(t *testing.T, conn *pgx.Conn) map[string]int {
	rows, err := conn.Query(context.Background(),
		`SELECT CASE WHEN content_hash LIKE '%/%' THEN split_part(content_hash, '/', 1) ELSE '' END, count(*) FROM rag_chunks GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	var (
		name string
		n    int
	)
	if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error { out[name] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// migratedDatabase is a fresh, migrated PostgreSQL as DATABASE_URL, with
// none of the developer's RAG settings.
func migratedDatabase(t *testing.T) string {
	t.Helper()
	clearRAGEnv(t)
	db := pgtest.New(t)
	t.Setenv("DATABASE_URL", db)
	if code, _, stderr := run("migrate"); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, stderr)
	}
	return db
}

func TestIngestSourcesAsTheOperatorRunsThem(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	db := migratedDatabase(t)
	conn, err := pgx.Connect(ctx, db)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close(ctx)
	term := filepath.Join(t.TempDir(), "termination-log")

	// An index built by hand before sources existed.
	code, _, stderr := run("ingest", "--docs", "../rag/testdata/docs", "--site-url", "https://docs.acme.example")
	g.Expect(code).To(Equal(0), stderr)

	repo := gittest.New(t)
	repo.Commit("docs", map[string]string{
		"README.md":        "not docs",
		"docs/intro.md":    "# Intro\n\nAcme syncs docs.\n\n## Setup\n\nRun acme setup.",
		"docs/old-name.md": "# Renamed page\n\nThis page moves.",
		"docs/gone.md":     "# Gone\n\nThis page is deleted.",
	})
	auth := t.TempDir()
	g.Expect(os.WriteFile(filepath.Join(auth, "username"), []byte("ci"), 0o600)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(auth, "password"), []byte("token"), 0o600)).To(Succeed())
	gitSpec := source.Spec{Name: "product", Git: &source.Git{URL: repo.Serve("ci", "token"), Path: "docs",
		SiteURL: "https://docs.acme.example", RouteBase: "/", AuthDir: auth}}
	siteSpec := source.Spec{Name: "handbook", Site: &source.Site{URL: docsSite(t).URL + "/sitemap.xml"}}

	t.Setenv(envvar.IngestSources, sourcesJSON(t, gitSpec, siteSpec))
	var out string
	code, out, stderr = run("ingest", "--termination-message-path", term)
	g.Expect(code).To(Equal(0), stderr)
	g.Expect(out).To(ContainSubstring(`ingest: source "product": cloned commit`))
	g.Expect(out).To(MatchRegexp(`ingest: 5 pages, 7 chunks: 7 added, 0 updated, 0 unchanged, \d+ removed, 0 skipped, 0 errors`))
	res := readResult(t, term)
	g.Expect([]int{res.Pages, res.Chunks, res.Added, res.Updated, res.Errors}).To(Equal([]int{5, 7, 7, 0, 0}))
	g.Expect(res.Removed).To(BeNumerically(">", 0), "the hand-made index is not listed: INGEST_SOURCES is authoritative")
	g.Expect(chunksBySource(t, conn)).To(Equal(map[string]int{"product": 4, "handbook": 3}))
	var url string
	g.Expect(conn.QueryRow(ctx, `SELECT url FROM rag_chunks WHERE heading = 'Pager'`).Scan(&url)).To(Succeed())
	g.Expect(url).To(HaveSuffix("/handbook/oncall#pager"))
	g.Expect(conn.QueryRow(ctx, `SELECT url FROM rag_chunks WHERE heading = 'Setup'`).Scan(&url)).To(Succeed())
	g.Expect(url).To(Equal("https://docs.acme.example/intro#setup"))

	// A commit renames a page, deletes one and edits one; the site answers
	// 304 and keeps its chunks.
	repo.Commit("move", map[string]string{
		"docs/new-name.md": "rename:docs/old-name.md",
		"docs/gone.md":     "",
		"docs/intro.md":    "# Intro\n\nAcme syncs docs.\n\n## Setup\n\nRun acme setup --now.",
	})
	code, out, stderr = run("ingest", "--termination-message-path", term)
	g.Expect(code).To(Equal(0), stderr)
	g.Expect(out).To(ContainSubstring("ingest: 4 pages, 6 chunks: 1 added, 1 updated, 4 unchanged, 2 removed, 0 skipped, 0 errors"))
	res = readResult(t, term)
	g.Expect(res).To(Equal(source.Result{Pages: 4, Chunks: 6, Added: 1, Updated: 1, Removed: 2, Errors: 0, Message: res.Message}))
	var cached int
	g.Expect(conn.QueryRow(ctx, `SELECT count(*) FROM ingest_pages WHERE source = 'handbook'`).Scan(&cached)).To(Succeed())
	g.Expect(cached).To(Equal(2))

	// The site is no longer listed: its chunks and stored pages go; the
	// git source's stay.
	t.Setenv(envvar.IngestSources, sourcesJSON(t, gitSpec))
	code, out, stderr = run("ingest", "--termination-message-path", term)
	g.Expect(code).To(Equal(0), stderr)
	g.Expect(out).To(ContainSubstring("0 added, 0 updated, 3 unchanged, 3 removed"))
	g.Expect(chunksBySource(t, conn)).To(Equal(map[string]int{"product": 3}))
	g.Expect(conn.QueryRow(ctx, `SELECT count(*) FROM ingest_pages`).Scan(&cached)).To(Succeed())
	g.Expect(cached).To(BeZero())

	// A single --site run adds its source and leaves the others alone.
	code, _, stderr = run("ingest", "--site", siteSpec.Site.URL, "--name", "handbook", "--termination-message-path", term)
	g.Expect(code).To(Equal(0), stderr)
	g.Expect(chunksBySource(t, conn)).To(Equal(map[string]int{"product": 3, "handbook": 3}))
	// And so does a --git run, with the same credential files.
	code, out, stderr = run("ingest", "--git", gitSpec.Git.URL, "--path", "docs", "--auth-dir", auth, "--name", "product",
		"--site-url", "https://docs.acme.example", "--route-base", "/", "--termination-message-path", term)
	g.Expect(code).To(Equal(0), stderr)
	g.Expect(out).To(ContainSubstring("0 added, 0 updated, 3 unchanged, 0 removed"))

	// A source that fails keeps its chunks, the run exits non-zero, and the
	// termination message says why.
	broken := gitSpec
	broken.Git = &source.Git{URL: gitSpec.Git.URL, Path: "docs", SiteURL: "https://docs.acme.example"}
	t.Setenv(envvar.IngestSources, sourcesJSON(t, broken, siteSpec))
	code, _, stderr = run("ingest", "--termination-message-path", term)
	g.Expect(code).To(Equal(1))
	g.Expect(stderr).To(ContainSubstring(`source "product": git: clone`))
	res = readResult(t, term)
	g.Expect(res.Errors).To(Equal(1))
	g.Expect(res.Message).To(ContainSubstring(`source "product": git: clone`))
	g.Expect(chunksBySource(t, conn)).To(Equal(map[string]int{"product": 3, "handbook": 3}))
}

// A run waits for the one in progress, boundedly, then gives up clearly.
func TestIngestWaitsForTheRunInProgress(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	db := migratedDatabase(t)
	holder, err := pgx.Connect(ctx, db)
	g.Expect(err).NotTo(HaveOccurred())
	defer holder.Close(ctx)
	_, err = holder.Exec(ctx, `SELECT pg_advisory_lock(x'696e67657374'::bigint)`)
	g.Expect(err).NotTo(HaveOccurred())

	term := filepath.Join(t.TempDir(), "termination-log")
	code, _, stderr := run("ingest", "--docs", "../rag/testdata/docs", "--site-url", "https://docs.acme.example", "--lock-wait", "1s", "--termination-message-path", term)
	g.Expect(code).To(Equal(1))
	g.Expect(stderr).To(ContainSubstring("another ingest run is in progress: waited 1s"))
	g.Expect(readResult(t, term).Message).To(ContainSubstring("another ingest run is in progress"))

	_, err = holder.Exec(ctx, `SELECT pg_advisory_unlock(x'696e67657374'::bigint)`)
	g.Expect(err).NotTo(HaveOccurred())
	code, _, stderr = run("ingest", "--docs", "../rag/testdata/docs", "--site-url", "https://docs.acme.example", "--lock-wait", "1s")
	g.Expect(code).To(Equal(0), stderr)
}

// The Job the operator renders for a ChatBackend's spec.ingest, run as its
// pod would run it: the container's arguments and INGEST_SOURCES exactly as
// controllers/specs builds them, the git source's Secret written where its
// volume is mounted (a temporary directory stands in for the mount path),
// and DATABASE_URL as the env Secret would give it. The two sides of the
// contract are tested one by one elsewhere; this proves they meet.
func TestIngestJobTheOperatorRenders(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	db := migratedDatabase(t)

	repo := gittest.New(t)
	repo.Commit("docs", map[string]string{"docs/intro.md": "# Intro\n\nAcme syncs docs.\n\n## Setup\n\nRun acme setup."})
	cb := &chatv1alpha1.ChatBackend{
		ObjectMeta: metav1.ObjectMeta{Name: "docs", Namespace: "team"},
		Spec: chatv1alpha1.ChatBackendSpec{Ingest: &chatv1alpha1.IngestSpec{Sources: []chatv1alpha1.IngestSource{
			{Name: "product", Git: &chatv1alpha1.GitSource{URL: repo.Serve("ci", "token"), Path: "docs",
				SiteURL: "https://docs.acme.example", RouteBase: "/", SecretRef: &chatv1alpha1.LocalSecretRef{Name: "git-creds"}}},
			{Name: "handbook", Site: &chatv1alpha1.SiteSource{URL: docsSite(t).URL + "/sitemap.xml"}},
		}}},
	}
	job, err := specs.IngestJob(cb, "chat-apiserver:test", "envhash")
	g.Expect(err).NotTo(HaveOccurred())
	pod := job.Spec.Template.Spec
	c := pod.Containers[0]

	// The kubelet's part: the Secret's keys as files under the mount path.
	secret := map[string]map[string]string{"git-creds": {"username": "ci", "password": "token"}}
	mounts := map[string]string{} // mount path -> local directory
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			data, ok := secret[v.Secret.SecretName]
			g.Expect(ok).To(BeTrue(), "the Job mounts Secret %q, which the spec does not name", v.Secret.SecretName)
			dir := t.TempDir()
			for k, val := range data {
				g.Expect(os.WriteFile(filepath.Join(dir, k), []byte(val), 0o600)).To(Succeed())
			}
			mounts[m.MountPath] = dir
		}
	}
	g.Expect(mounts).NotTo(BeEmpty(), "the git source's Secret is mounted")
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			continue
		}
		val := e.Value
		if e.Name == envvar.IngestSources {
			for path, dir := range mounts {
				val = strings.ReplaceAll(val, `"`+path, `"`+dir)
			}
		}
		t.Setenv(e.Name, val)
	}
	g.Expect(c.Command).To(Equal([]string{specs.Binary}))
	term := filepath.Join(t.TempDir(), "termination-log")
	code, out, stderr := run(append(c.Args, "--termination-message-path", term)...)
	g.Expect(code).To(Equal(0), stderr)
	g.Expect(out).To(ContainSubstring(`source "product": cloned commit`))
	g.Expect(readResult(t, term).Errors).To(BeZero())

	conn, err := pgx.Connect(ctx, db)
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close(ctx)
	g.Expect(chunksBySource(t, conn)).To(Equal(map[string]int{"product": 2, "handbook": 3}))
}
