//go:build eval

package eval

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/pgstore"
)

// diagnosticStore serves the fictional docs offline, as make eval does,
// and opens the store it ingested, for the diagnostics that look inside
// the ranking: the served API and a token, the pool (closed with t) and
// the lexical store.
func diagnosticStore(t *testing.T) (api, token string, pool *pgxpool.Pool, store *pgstore.Store) {
	t.Helper()
	api, token = serve(t, offline, driftwood)
	pool, store = servedStore(t)
	return api, token, pool, store
}

// servedStore opens the lexical store the last serve ingested into (its
// DATABASE_URL), with its pool, closed with t.
func servedStore(t *testing.T) (*pgxpool.Pool, *pgstore.Store) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), os.Getenv(envvar.DatabaseURL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, pgstore.New(pool, pgstore.Options{Lexical: true})
}

// TestLexicalCeiling is a one-off diagnostic, not part of make eval:
//
//	go test -tags eval -count=1 -run '^TestLexicalCeiling$' -v ./hack/eval/
//
// For each answerable question make eval misses at hit@1 (the answer's
// first source is not the right page), it asks whether any lexical
// weighting could have ranked the right section first. The right section
// is the right page's chunk holding the expected fact (else another
// one holding a question word the wrong one lacks); the wrong one is
// BM25F's first, unthresholded. When no chunk of the right page holds a
// question word (stemmed, stop words dropped) that the wrong one lacks,
// every question word it holds is also in the wrong one, and no weighting
// of words can put the page ahead: only knowing what words mean can. When
// BM25F already ranks the right page first, the miss is the relevance
// threshold's or the answer's, not the ranking's.
func TestLexicalCeiling(t *testing.T) {
	api, token, pool, store := diagnosticStore(t)
	ctx := context.Background()
	chunks := loadChunks(t, pool)
	for _, set := range sets {
		t.Run(set.file, func(t *testing.T) {
			var answerable, missed, rankedRight, fixable, unfixable int
			for _, q := range loadQuestions(t, set.file) {
				if q.Kind == "unanswerable" {
					continue
				}
				answerable++
				if ask(t, api, token, q.Q).rank(driftwood, q.Page) == 1 {
					continue
				}
				missed++
				hits, err := store.Search(ctx, vectorstore.Query{Text: q.Q, Limit: len(chunks), Lexical: true})
				if err != nil {
					t.Fatal(err)
				}
				if len(hits) > 0 && driftwood.onPage(hits[0].URL, q.Page) {
					rankedRight++
					t.Logf("ranked right, lost to the threshold or the answer: %q (%s first, coverage %.2f)", q.Q, strings.TrimPrefix(hits[0].URL, site), hits[0].Coverage)
					continue
				}
				var wrong vectorstore.Payload // no hit: no chunk shares a word
				if len(hits) > 0 {
					wrong = hits[0].Payload
				}
				right, only := rightSection(t, chunks, q, wrong)
				verdict := "a weighting could fix"
				if len(only) > 0 {
					fixable++
				} else {
					unfixable++
					verdict = "no lexical weighting can fix"
				}
				t.Logf("%s: %q: right %s, first %s; question words only the right one holds: %v", verdict, q.Q, strings.TrimPrefix(right.URL, site), strings.TrimPrefix(wrong.URL, site), only)
			}
			t.Logf("%s: %d answerable, %d missed at hit@1: %d ranked first by BM25F (lost to the threshold or the answer); %d ranked wrong, of which %d a lexical weighting could fix and %d none can",
				set.file, answerable, missed, rankedRight, fixable+unfixable, fixable, unfixable)
		})
	}
}

// loadChunks reads every indexed chunk.
func loadChunks(t *testing.T, pool *pgxpool.Pool) []vectorstore.Payload {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT url, title, heading, text FROM rag_chunks ORDER BY url, id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []vectorstore.Payload
	for rows.Next() {
		var p vectorstore.Payload
		if err := rows.Scan(&p.URL, &p.Title, &p.Heading, &p.Text); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// rightSection returns the first chunk of q's page, the one holding its
// fact first, that holds question words wrong lacks, and those words; if
// none does, the chunk holding the fact (else the page's first) and none.
func rightSection(t *testing.T, chunks []vectorstore.Payload, q question, wrong vectorstore.Payload) (vectorstore.Payload, []string) {
	t.Helper()
	var page []vectorstore.Payload
	for _, c := range chunks {
		if driftwood.onPage(c.URL, q.Page) {
			page = append(page, c)
		}
	}
	if len(page) == 0 {
		t.Fatalf("%q: no chunk of page %s", q.Q, q.Page)
	}
	if i := slices.IndexFunc(page, func(c vectorstore.Payload) bool {
		return strings.Contains(strings.ToLower(c.Text), strings.ToLower(q.Fact))
	}); i > 0 {
		page[0], page[i] = page[i], page[0]
	}
	for _, c := range page {
		if only := wordsOnlyInRight(q.Q, c, wrong); len(only) > 0 {
			return c, only
		}
	}
	return page[0], nil
}

// wordsOnlyInRight returns the question's index terms that right holds
// and wrong does not.
func wordsOnlyInRight(question string, right, wrong vectorstore.Payload) []string {
	terms := func(p vectorstore.Payload) []string {
		return embed.Words(p.Title + " " + p.Heading + " " + p.Text)
	}
	in, notIn := terms(right), terms(wrong)
	var out []string
	for _, w := range embed.Words(question) {
		if slices.Contains(in, w) && !slices.Contains(notIn, w) && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}
