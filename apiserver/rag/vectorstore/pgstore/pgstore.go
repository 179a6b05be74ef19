// Package pgstore keeps the chunks and their embeddings in PostgreSQL and
// searches them in process: every API server holds the embeddings in memory
// (one slab of half-precision floats) and scans them all with SIMD dot
// products, so a docs site needs neither Qdrant nor the pgvector extension.
// Offline, where questions rank by BM25F alone, it loads no embedding.
package pgstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

// Options tunes the store.
type Options struct {
	// RecheckEvery bounds how often a search asks the database whether the
	// chunks changed (default 2s): an ingest run elsewhere shows up within it.
	RecheckEvery time.Duration
	// Lexical: every search ranks by BM25F alone (the offline, lexical
	// embedder; see vectorstore.Query.Lexical), so the embeddings are not
	// loaded: they are never read, and at 1024 dimensions they were half
	// of a server's heap (200 MiB at 100k chunks). A dense query is then
	// refused.
	Lexical bool
	// DenseWeight is the dense ranking's share of a hybrid search's score,
	// in [0, 1]; the lexical (BM25F) one has the rest (see fuse). Nil:
	// DefaultDenseWeight.
	DenseWeight *float64
}

// DefaultDenseWeight is the dense share of the hybrid score
// (RAG_DENSE_WEIGHT) when unset, tuned with make eval on hack/eval's
// labelled set alone and its local sentence encoder: from 0.5 to 0.7 it
// ranks and answers best (hit@1 0.939, facts 0.898), below 0.5 fewer
// answers hold the fact, above 0.7 the encoder's wrong first choices win;
// 0.6 is the middle (README, Answer quality). A stronger embedding model
// deserves more weight: measure it with make eval. The weight is not the
// share of the ordering it suggests: scaled from -1, candidates' cosines
// (0.35-0.75 here) all land within 0.77-1.0, so at 0.6 the dense term moves
// a candidate by at most about 0.14 and BM25F's by up to 0.4; most of the
// dense weight is the same for every candidate (which is why 0.1-0.7 rank
// alike here).
const DefaultDenseWeight = 0.6

// Store implements vectorstore.Store on the rag_chunks table.
type Store struct {
	pool *pgxpool.Pool
	opts Options

	loaded atomic.Pointer[snapshot]
	// reload is held by the one request that checks the generation and
	// reloads; the others keep searching the snapshot they have.
	reload sync.Mutex
}

// snapshot is an immutable in-memory copy of the chunks.
type snapshot struct {
	idx       *index
	gen       int64
	checkedAt time.Time
	// loadedAt and loadTook space reloads (see reloadDue).
	loadedAt time.Time
	loadTook time.Duration
}

// Reloads that take longer than cheapReload are spaced reloadSpacing
// times their own duration apart. Why: an ingest moves the generation on
// every batch, and a 100k-chunk index takes a replica 13-19 s of CPU to
// load (make bench-retrieval), so a long first ingest would otherwise keep
// every replica reloading back to back. The spacing bounds that to a
// quarter of a core while new chunks still show up within four load times;
// a small index, cheap to load, keeps following within RecheckEvery.
const (
	cheapReload   = 100 * time.Millisecond
	reloadSpacing = 4
)

// reloadDue reports whether a moved generation may be loaded now.
func (sn *snapshot) reloadDue(now time.Time) bool {
	return sn.loadTook < cheapReload || now.Sub(sn.loadedAt) >= reloadSpacing*sn.loadTook
}

var (
	_ vectorstore.Store   = (*Store)(nil)
	_ vectorstore.Weigher = (*Store)(nil)
)

// New returns a store on pool (schema from the store's migrations).
func New(pool *pgxpool.Pool, opts Options) *Store {
	if opts.RecheckEvery <= 0 {
		opts.RecheckEvery = 2 * time.Second
	}
	return &Store{pool: pool, opts: opts}
}

// Hashes implements vectorstore.Store.
func (s *Store) Hashes(ctx context.Context) (map[string]vectorstore.Stored, error) {
	out := map[string]vectorstore.Stored{}
	rows, err := s.pool.Query(ctx, `SELECT id::text, content_hash, doc_path FROM rag_chunks`)
	if err == nil {
		var (
			id string
			st vectorstore.Stored
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &st.ContentHash, &st.DocPath}, func() error { out[id] = st; return nil })
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return nil, fmt.Errorf("the rag_chunks table is missing: run `chat-apiserver migrate` first: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("list chunk hashes: %w", err)
	}
	return out, nil
}

// Upsert implements vectorstore.Store: all points in one transaction, which
// also bumps the generation so that searching servers reload.
func (s *Store) Upsert(ctx context.Context, points []vectorstore.Point) error {
	if len(points) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, p := range points {
			if len(p.Vector) == 0 {
				return fmt.Errorf("point %s has no vector", p.ID)
			}
			b.Queue(`
INSERT INTO rag_chunks (id, doc_path, url, title, heading, text, content_hash, dims, embedding, updated_at)
VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, now())
ON CONFLICT (id) DO UPDATE SET doc_path = EXCLUDED.doc_path, url = EXCLUDED.url, title = EXCLUDED.title,
  heading = EXCLUDED.heading, text = EXCLUDED.text, content_hash = EXCLUDED.content_hash,
  dims = EXCLUDED.dims, embedding = EXCLUDED.embedding, updated_at = now()`,
				p.ID, p.Payload.DocPath, p.Payload.URL, p.Payload.Title, p.Payload.Heading, p.Payload.Text,
				p.Payload.ContentHash, len(p.Vector), encode(p.Vector))
		}
		b.Queue(`UPDATE rag_index_state SET generation = generation + 1`)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("upsert %d chunks: %w", len(points), err)
	}
	return nil
}

// Delete implements vectorstore.Store.
func (s *Store) Delete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM rag_chunks WHERE id = ANY($1::uuid[])`, ids); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE rag_index_state SET generation = generation + 1`)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete %d chunks: %w", len(ids), err)
	}
	return nil
}

// Search implements vectorstore.Store. Offline (q.Lexical, or no vector)
// it ranks by BM25F alone; with a real embedding it fuses the dense and the
// BM25F scores (fuse): exact terms (an error code, a flag) and meaning both
// find their passage.
func (s *Store) Search(ctx context.Context, q vectorstore.Query) ([]vectorstore.Hit, error) {
	idx, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	if idx.len() == 0 || q.Limit <= 0 {
		return nil, nil
	}
	if q.Lexical || len(q.Vector) == 0 {
		lex := idx.lex.search(idx.lex.query(q.Text, q.Previous), q.Limit)
		hits := make([]vectorstore.Hit, len(lex))
		for i, h := range lex {
			hits[i] = vectorstore.Hit{ID: idx.ids[h.row], Score: h.score, Coverage: h.coverage, Payload: idx.payloads[h.row]}
		}
		return hits, nil
	}
	if s.opts.Lexical {
		return nil, errors.New("a dense query on a store opened for BM25F alone (pgstore.Options.Lexical): no embedding is loaded")
	}
	if len(q.Vector) != idx.dims {
		return nil, fmt.Errorf("query has %d dimensions but the stored chunks have %d: the embedding model changed, run ingest again", len(q.Vector), idx.dims)
	}
	hits := s.fuse(idx, q)
	slices.SortFunc(hits, func(a, b fusedHit) int {
		// Ties (at DenseWeight 0 every candidate sharing no word with the
		// question scores 0) go to the closer in meaning, then the better
		// BM25F score, then the row, so the order never depends on the map.
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		if c := cmp.Compare(b.similarity, a.similarity); c != 0 {
			return c
		}
		if c := cmp.Compare(b.bm25, a.bm25); c != 0 {
			return c
		}
		return a.row - b.row
	})
	hits = hits[:min(q.Limit, len(hits))]
	out := make([]vectorstore.Hit, len(hits))
	for i, h := range hits {
		out[i] = vectorstore.Hit{ID: idx.ids[h.row], Score: h.score, Coverage: h.coverage, Similarity: h.similarity, Payload: idx.payloads[h.row]}
	}
	return out, nil
}

// fusedHit is a hybrid candidate with both its scores and their fusion.
type fusedHit struct {
	row int
	// score is the fused score; bm25 and similarity the two it fuses.
	score, bm25, similarity, coverage float32
}

// fuse scores the candidates of a hybrid search (each side's best 4×Limit:
// fusion can promote a passage ranked well by both but first by neither)
// by a convex combination of their normalised scores: DenseWeight × the
// cosine similarity scaled from its theoretical minimum (-1) to the best
// candidate's, plus the rest × the BM25F score scaled from 0 to the best
// candidate's. Why not reciprocal rank fusion, which this replaced: RRF
// counts ranks alone, so a weak encoder's ordering weighs as much as
// BM25F's, and a passage BM25F finds far ahead of the rest but the encoder
// ranks last loses to one both rank middling. Scores keep how far ahead a
// passage is, and the weight says how much to trust each side; Bruch, Gai
// and Ingber ("An Analysis of Fusion Functions for Hybrid Retrieval", ACM
// TOIS 2023) find this combination better than RRF and tunable on a few
// labelled questions.
func (s *Store) fuse(idx *index, q vectorstore.Query) []fusedHit {
	wDense := float32(DefaultDenseWeight)
	if s.opts.DenseWeight != nil {
		wDense = float32(*s.opts.DenseWeight)
	}
	lq := idx.lex.query(q.Text, q.Previous)
	seen := map[int]bool{}
	var hits []fusedHit
	add := func(row int) {
		if seen[row] {
			return
		}
		seen[row] = true
		lex := idx.lex.hit(lq, row)
		hits = append(hits, fusedHit{row: row, bm25: lex.score, coverage: lex.coverage,
			similarity: dotHalf(q.Vector, idx.vecs[row*idx.dims:(row+1)*idx.dims])})
	}
	for _, d := range idx.search(q.Vector, 4*q.Limit) {
		add(d.row)
	}
	for _, l := range idx.lex.search(lq, 4*q.Limit) {
		add(l.row)
	}
	// The best of each side is among the candidates: its top hit.
	var maxLex, maxSim float32 = 0, -1
	for _, h := range hits {
		maxLex, maxSim = max(maxLex, h.bm25), max(maxSim, h.similarity)
	}
	for i, h := range hits {
		var lex, dense float32
		if maxLex > 0 {
			lex = h.bm25 / maxLex
		}
		if maxSim > -1 {
			dense = (h.similarity + 1) / (maxSim + 1)
		}
		hits[i].score = wDense*dense + (1-wDense)*lex
	}
	return hits
}

// Empty implements vectorstore.Store, on the loaded snapshot.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	idx, err := s.current(ctx)
	if err != nil {
		return false, err
	}
	return idx.len() == 0, nil
}

// Weights implements vectorstore.Weigher.
func (s *Store) Weights(ctx context.Context, text string) (map[string]float64, error) {
	idx, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, w := range uniqueWords(text) {
		out[w] = idf(idx.len(), len(idx.lex.postings[w]))
	}
	return out, nil
}

// Load reads the chunks into memory now (the server calls it at start-up so
// that the first question does not wait for it).
func (s *Store) Load(ctx context.Context) error {
	s.reload.Lock()
	defer s.reload.Unlock()
	return s.reloadLocked(ctx)
}

// current returns the in-memory index, reloading it when the generation in
// the database moved since the last check. Only the first load blocks
// searches; later checks and reloads run in one request while the others
// use the previous snapshot.
func (s *Store) current(ctx context.Context) (*index, error) {
	cur := s.loaded.Load()
	if cur != nil && time.Since(cur.checkedAt) < s.opts.RecheckEvery {
		return cur.idx, nil
	}
	if cur != nil {
		if !s.reload.TryLock() {
			return cur.idx, nil
		}
	} else {
		s.reload.Lock()
	}
	defer s.reload.Unlock()
	if cur = s.loaded.Load(); cur != nil && time.Since(cur.checkedAt) < s.opts.RecheckEvery {
		return cur.idx, nil // loaded by the request we waited for
	}
	var gen int64
	if err := s.pool.QueryRow(ctx, `SELECT generation FROM rag_index_state`).Scan(&gen); err != nil {
		if cur != nil {
			// Serve the loaded chunks while the database is unreachable.
			return cur.idx, nil
		}
		return nil, fmt.Errorf("read chunk generation: %w", err)
	}
	if cur != nil && (gen == cur.gen || !cur.reloadDue(time.Now())) {
		next := *cur
		next.checkedAt = time.Now()
		s.loaded.Store(&next)
		return cur.idx, nil
	}
	if err := s.reloadLocked(ctx); err != nil {
		if cur != nil {
			return cur.idx, nil
		}
		return nil, err
	}
	return s.loaded.Load().idx, nil
}

func (s *Store) reloadLocked(ctx context.Context) error {
	start := time.Now()
	idx := &index{}
	var gen int64
	// Repeatable read: the generation and the rows are one snapshot.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT generation FROM rag_index_state`).Scan(&gen); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM rag_chunks`).Scan(&n); err != nil {
			return err
		}
		idx.ids, idx.payloads = make([]string, 0, n), make([]vectorstore.Payload, 0, n)
		var (
			id   string
			p    vectorstore.Payload
			dims int
			emb  []byte
		)
		cols, dest := `id::text, doc_path, url, title, heading, text, content_hash`,
			[]any{&id, &p.DocPath, &p.URL, &p.Title, &p.Heading, &p.Text, &p.ContentHash}
		if !s.opts.Lexical {
			cols, dest = cols+`, dims, embedding`, append(dest, &dims, &emb)
		}
		rows, err := tx.Query(ctx, `SELECT `+cols+` FROM rag_chunks ORDER BY id`)
		if err != nil {
			return err
		}
		_, err = pgx.ForEachRow(rows, dest, func() error {
			idx.ids = append(idx.ids, id)
			idx.payloads = append(idx.payloads, p)
			if s.opts.Lexical {
				return nil
			}
			return idx.addVector(id, dims, emb, n)
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("load chunks: %w", err)
	}
	idx.lex = buildLexIndex(idx.payloads)
	now := time.Now()
	s.loaded.Store(&snapshot{idx: idx, gen: gen, checkedAt: now, loadedAt: now, loadTook: now.Sub(start)})
	return nil
}

// addVector appends the embedding of chunk id (emb: dims float32s, of n
// chunks in all) to the slab.
func (ix *index) addVector(id string, dims int, emb []byte, n int) error {
	if ix.dims == 0 {
		ix.dims = dims
		ix.vecs = make([]uint16, 0, n*dims)
	}
	if dims != ix.dims {
		return fmt.Errorf("chunk %s has %d dimensions, others %d: the embedding model changed mid-ingest, run ingest again", id, dims, ix.dims)
	}
	ix.vecs = decodeHalfAppend(ix.vecs, emb)
	return nil
}

func encode(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// decodeHalfAppend appends the float32s encoded in b as halves.
func decodeHalfAppend(dst []uint16, b []byte) []uint16 {
	for i := 0; i+4 <= len(b); i += 4 {
		dst = append(dst, toHalf(math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))))
	}
	return dst
}
