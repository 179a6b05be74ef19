// Package qdrantstore keeps the chunks in a Qdrant collection, reached over
// gRPC with the official go-client. The collection is created on the first
// upsert, with a named dense vector ("dense") sized by the embeddings and,
// for hybrid search, a named sparse vector ("sparse") weighed by IDF.
package qdrantstore

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"

	"github.com/chatbackend/chatbackend/apiserver/rag/embed"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

// Vector names in the collection.
const (
	DenseVector  = "dense"
	SparseVector = "sparse"
)

// DefaultCollection is used when QDRANT_COLLECTION is unset.
const DefaultCollection = "docs"

// Options configures the store.
type Options struct {
	// URL is the gRPC endpoint, http://host:6334 (https for TLS); the port
	// defaults to 6334.
	URL        string
	APIKey     string
	Collection string
	// Hybrid adds a sparse lexical vector to every point and fuses dense and
	// sparse results with reciprocal rank fusion.
	Hybrid bool
	// GRPCOptions are extra dial options (tests dial an in-process server).
	GRPCOptions []grpc.DialOption
}

// Store implements vectorstore.Store on Qdrant.
type Store struct {
	client     *qdrant.Client
	collection string
	hybrid     bool

	mu     sync.Mutex
	exists bool
}

var _ vectorstore.Store = (*Store)(nil)

// New connects (lazily: gRPC dials on first use).
func New(o Options) (*Store, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("QDRANT_URL %q: want http://host:6334 or https://host:6334", o.URL)
	}
	port := 6334
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("QDRANT_URL %q: bad port", o.URL)
		}
	}
	host := u.Hostname()
	if o.Collection == "" {
		o.Collection = DefaultCollection
	}
	client, err := qdrant.NewClient(&qdrant.Config{
		Host:   host,
		Port:   port,
		APIKey: o.APIKey,
		UseTLS: u.Scheme == "https",
		// The version probe blocks start-up for up to a minute when Qdrant
		// is not up yet; readiness is the health checks' business.
		SkipCompatibilityCheck: true,
		PoolSize:               1,
		GrpcOptions:            o.GRPCOptions,
	})
	if err != nil {
		return nil, fmt.Errorf("qdrant client for %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
	}
	return &Store{client: client, collection: o.Collection, hybrid: o.Hybrid}, nil
}

// Close closes the gRPC connection.
func (s *Store) Close() error { return s.client.Close() }

func (s *Store) collectionExists(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exists {
		return true, nil
	}
	ok, err := s.client.CollectionExists(ctx, s.collection)
	if err != nil {
		return false, fmt.Errorf("qdrant: does collection %q exist: %w", s.collection, err)
	}
	s.exists = ok
	return ok, nil
}

func (s *Store) ensureCollection(ctx context.Context, dims int) error {
	if ok, err := s.collectionExists(ctx); err != nil || ok {
		return err
	}
	req := &qdrant.CreateCollection{
		CollectionName: s.collection,
		VectorsConfig: qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{
			DenseVector: {Size: uint64(dims), Distance: qdrant.Distance_Cosine}, //nolint:gosec // dims is the length of a vector, never negative
		}),
	}
	if s.hybrid {
		req.SparseVectorsConfig = qdrant.NewSparseVectorsConfig(map[string]*qdrant.SparseVectorParams{
			SparseVector: {Modifier: qdrant.Modifier_Idf.Enum()},
		})
	}
	if err := s.client.CreateCollection(ctx, req); err != nil {
		return fmt.Errorf("qdrant: create collection %q: %w", s.collection, err)
	}
	s.mu.Lock()
	s.exists = true
	s.mu.Unlock()
	return nil
}

// Hashes implements vectorstore.Store.
func (s *Store) Hashes(ctx context.Context) (map[string]vectorstore.Stored, error) {
	out := map[string]vectorstore.Stored{}
	if ok, err := s.collectionExists(ctx); err != nil || !ok {
		return out, err
	}
	var offset *qdrant.PointId
	for {
		points, next, err := s.client.ScrollAndOffset(ctx, &qdrant.ScrollPoints{
			CollectionName: s.collection,
			Offset:         offset,
			Limit:          qdrant.PtrOf(uint32(1000)),
			// Only the two fields: the chunks' text would make the scroll
			// of a large index many times heavier.
			WithPayload: qdrant.NewWithPayloadInclude("content_hash", "doc_path"),
			WithVectors: qdrant.NewWithVectors(false),
		})
		if err != nil {
			return nil, fmt.Errorf("qdrant: scroll %q: %w", s.collection, err)
		}
		for _, p := range points {
			pl := p.GetPayload()
			out[p.GetId().GetUuid()] = vectorstore.Stored{
				ContentHash: pl["content_hash"].GetStringValue(),
				DocPath:     pl["doc_path"].GetStringValue(),
			}
		}
		if next == nil || len(points) == 0 {
			return out, nil
		}
		offset = next
	}
}

// Empty implements vectorstore.Store: the collection is missing (created
// by the first ingest) or has no point.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	if ok, err := s.collectionExists(ctx); err != nil || !ok {
		return err == nil, err
	}
	points, err := s.client.Scroll(ctx, &qdrant.ScrollPoints{
		CollectionName: s.collection,
		Limit:          qdrant.PtrOf(uint32(1)),
		WithPayload:    qdrant.NewWithPayload(false),
		WithVectors:    qdrant.NewWithVectors(false),
	})
	if err != nil {
		return false, fmt.Errorf("qdrant: scroll %q: %w", s.collection, err)
	}
	return len(points) == 0, nil
}

// Upsert implements vectorstore.Store.
func (s *Store) Upsert(ctx context.Context, points []vectorstore.Point) error {
	if len(points) == 0 {
		return nil
	}
	if err := s.ensureCollection(ctx, len(points[0].Vector)); err != nil {
		return err
	}
	ps := make([]*qdrant.PointStruct, len(points))
	for i, p := range points {
		vectors := map[string]*qdrant.Vector{DenseVector: qdrant.NewVectorDense(p.Vector)}
		if s.hybrid {
			idx, val := embed.Sparse(p.Payload.Title + " " + p.Payload.Heading + " " + p.Payload.Text)
			vectors[SparseVector] = qdrant.NewVectorSparse(idx, val)
		}
		ps[i] = &qdrant.PointStruct{
			Id:      qdrant.NewIDUUID(p.ID),
			Vectors: qdrant.NewVectorsMap(vectors),
			Payload: qdrant.NewValueMap(map[string]any{
				"doc_path":     p.Payload.DocPath,
				"url":          p.Payload.URL,
				"title":        p.Payload.Title,
				"heading":      p.Payload.Heading,
				"text":         p.Payload.Text,
				"content_hash": p.Payload.ContentHash,
			}),
		}
	}
	if _, err := s.client.Upsert(ctx, &qdrant.UpsertPoints{
		CollectionName: s.collection, Wait: qdrant.PtrOf(true), Points: ps,
	}); err != nil {
		return fmt.Errorf("qdrant: upsert %d points: %w", len(ps), err)
	}
	return nil
}

// Delete implements vectorstore.Store.
func (s *Store) Delete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	pids := make([]*qdrant.PointId, len(ids))
	for i, id := range ids {
		pids[i] = qdrant.NewIDUUID(id)
	}
	if _, err := s.client.Delete(ctx, &qdrant.DeletePoints{
		CollectionName: s.collection, Wait: qdrant.PtrOf(true), Points: qdrant.NewPointsSelectorIDs(pids),
	}); err != nil {
		return fmt.Errorf("qdrant: delete %d points: %w", len(ids), err)
	}
	return nil
}

// Search implements vectorstore.Store.
func (s *Store) Search(ctx context.Context, q vectorstore.Query) ([]vectorstore.Hit, error) {
	if ok, err := s.collectionExists(ctx); err != nil || !ok {
		return nil, err // nothing ingested yet: no hits
	}
	limit := uint64(max(q.Limit, 1))
	req := &qdrant.QueryPoints{
		CollectionName: s.collection,
		Limit:          qdrant.PtrOf(limit),
		WithPayload:    qdrant.NewWithPayload(true),
	}
	idx, val := embed.Sparse(q.Text)
	if s.hybrid && len(idx) > 0 {
		// Each side proposes more candidates than asked so that fusion can
		// promote a passage ranked well by both but first by neither.
		req.Prefetch = []*qdrant.PrefetchQuery{
			{Query: qdrant.NewQueryDense(q.Vector), Using: qdrant.PtrOf(DenseVector), Limit: qdrant.PtrOf(4 * limit)},
			{Query: qdrant.NewQuerySparse(idx, val), Using: qdrant.PtrOf(SparseVector), Limit: qdrant.PtrOf(4 * limit)},
		}
		req.Query = qdrant.NewQueryFusion(qdrant.Fusion_RRF)
	} else {
		req.Query = qdrant.NewQueryDense(q.Vector)
		req.Using = qdrant.PtrOf(DenseVector)
	}
	res, err := s.client.Query(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("qdrant: query %q: %w", s.collection, err)
	}
	hits := make([]vectorstore.Hit, len(res))
	for i, p := range res {
		pl := p.GetPayload()
		hits[i] = vectorstore.Hit{
			ID:    p.GetId().GetUuid(),
			Score: p.GetScore(),
			// Qdrant's scores are not coverage: no threshold applies.
			Coverage: 1,
			Payload: vectorstore.Payload{
				DocPath:     pl["doc_path"].GetStringValue(),
				URL:         pl["url"].GetStringValue(),
				Title:       pl["title"].GetStringValue(),
				Heading:     pl["heading"].GetStringValue(),
				Text:        pl["text"].GetStringValue(),
				ContentHash: pl["content_hash"].GetStringValue(),
			},
		}
	}
	return hits, nil
}
