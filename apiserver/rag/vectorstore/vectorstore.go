// Package vectorstore is the retrieval interface the RAG pipeline uses, with
// two implementations: Qdrant (qdrantstore) and PostgreSQL searched in
// process (pgstore), so a docs site can run on PostgreSQL alone.
package vectorstore

import "context"

// Payload is what is stored with each chunk's vector.
type Payload struct {
	DocPath string `json:"doc_path"`
	URL     string `json:"url"`
	Title   string `json:"title"`
	Heading string `json:"heading"`
	Text    string `json:"text"`
	// ContentHash covers the embedded text and the embedding model: a chunk
	// whose hash is unchanged needs no new embedding.
	ContentHash string `json:"content_hash"`
}

// Point is one chunk to store. ID is a UUID.
type Point struct {
	ID      string
	Vector  []float32
	Payload Payload
}

// Hit is one search result; Score is higher for better matches and means
// nothing across questions.
type Hit struct {
	ID    string
	Score float32
	// Coverage is the share of the question's term weight (by IDF) that the
	// chunk contains, in [0, 1]: comparable across questions, it is what
	// the relevance threshold applies to. A store that does not measure it
	// reports 1, and then every hit counts as relevant.
	Coverage float32
	// Similarity is the cosine similarity of the chunk's embedding with the
	// question's, for a store that ranked by a dense embedding (pgstore's
	// hybrid search); 0 otherwise. Unlike Score it is comparable across
	// questions of one embedding model, which a relevance threshold on
	// meaning needs (rag.Engine.MinSimilarity).
	Similarity float32
	Payload
}

// Query is one search. Vector is the question's normalized embedding; Text
// is the question itself, used by stores that also search lexically.
type Query struct {
	Vector []float32
	Text   string
	// Previous is the conversation's previous question, for a follow-up
	// ("and on macOS?"): a store that ranks lexically by its own index
	// (pgstore) counts its words at a lower weight; the others ignore it.
	Previous string
	Limit    int
	// Lexical says the vector is the offline lexical embedding, which only
	// repeats the words of Text: a store with a lexical index of its own
	// ranks by that index alone instead of fusing the two.
	Lexical bool
}

// Stored is what ingestion needs to know of a stored chunk: its content
// hash, to skip it when unchanged, and its page, to keep it while that
// page fails to load (and remove the chunks of the other removed pages).
type Stored struct {
	ContentHash string
	DocPath     string
}

// Store holds the chunks of the docs.
type Store interface {
	// Hashes maps every stored point id to its content hash and page,
	// which lets ingestion skip unchanged chunks and delete vanished ones.
	Hashes(ctx context.Context) (map[string]Stored, error)
	Upsert(ctx context.Context, points []Point) error
	Delete(ctx context.Context, ids []string) error
	Search(ctx context.Context, q Query) ([]Hit, error)
	// Empty reports whether the store holds no chunk at all: nothing was
	// ingested yet, which an answer tells apart from a question the docs
	// do not cover.
	Empty(ctx context.Context) (bool, error)
}

// Weigher is a store that knows how informative each word of the docs is.
type Weigher interface {
	// Weights is the IDF of each word of text (embed.Words form) over the
	// stored chunks; a word no chunk has gets the highest weight.
	Weights(ctx context.Context, text string) (map[string]float64, error)
}
