// Package qdranttest is a FAKE Qdrant for tests: an in-process gRPC server
// implementing go-client's generated CollectionsServer and PointsServer
// interfaces, so the real client and its wire protocol are exercised. It
// implements what the RAG store calls (collection exists/create, upsert,
// delete by id, scroll, query by named dense or sparse vector with prefetch
// and RRF fusion), exactly, by brute force.
package qdranttest

import (
	"cmp"
	"context"
	"math"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Server is the fake.
type Server struct {
	// URL is what QDRANT_URL would be: http://127.0.0.1:port (gRPC).
	URL string

	apiKey string
	mu     sync.Mutex
	cols   map[string]*collection
	calls  map[string]int
	// lastQuery is a copy of the last Query request, for tests that check
	// what was asked (prefetches, fusion) besides what came back.
	lastQuery *qdrant.QueryPoints
}

// The two gRPC services both have Get and Delete methods, so each gets its
// own type over the shared state.
type collectionsSrv struct {
	qdrant.UnimplementedCollectionsServer
	*Server
}

type pointsSrv struct {
	qdrant.UnimplementedPointsServer
	*Server
}

type collection struct {
	dense      map[string]uint64 // vector name → size
	sparse     map[string]bool   // vector name → IDF modifier
	points     map[string]*point
	createdFor *qdrant.CreateCollection
}

type point struct {
	dense   map[string][]float32
	sparse  map[string]map[uint32]float32
	payload map[string]*qdrant.Value
}

// Start serves the fake until the test ends. A non-empty apiKey is required
// in the "api-key" metadata of every call, as Qdrant does.
func Start(t testing.TB, apiKey string) *Server {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakeqdrant: listen: %v", err)
	}
	s := &Server{apiKey: apiKey, cols: map[string]*collection{}, calls: map[string]int{},
		URL: "http://" + lis.Addr().String()}
	gs := grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	qdrant.RegisterCollectionsServer(gs, collectionsSrv{Server: s})
	qdrant.RegisterPointsServer(gs, pointsSrv{Server: s})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return s
}

func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	s.mu.Lock()
	s.calls[info.FullMethod]++
	s.mu.Unlock()
	if s.apiKey != "" {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("api-key"); len(v) != 1 || v[0] != s.apiKey {
			return nil, status.Error(codes.Unauthenticated, "fakeqdrant: bad api key")
		}
	}
	return h(ctx, req)
}

// Calls counts the calls of a gRPC method ("/qdrant.Points/Upsert").
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// LastQuery returns a copy of the last Query request received (nil if none).
func (s *Server) LastQuery() *qdrant.QueryPoints {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastQuery == nil {
		return nil
	}
	return proto.Clone(s.lastQuery).(*qdrant.QueryPoints)
}

// PointCount is the number of points of a collection (-1 if it is missing).
func (s *Server) PointCount(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cols[name]
	if !ok {
		return -1
	}
	return len(c.points)
}

// Collection returns the request the collection was created with.
func (s *Server) Collection(name string) *qdrant.CreateCollection {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cols[name]; ok {
		return c.createdFor
	}
	return nil
}

// CollectionExists implements qdrant.CollectionsServer.
func (s collectionsSrv) CollectionExists(_ context.Context, r *qdrant.CollectionExistsRequest) (*qdrant.CollectionExistsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.cols[r.GetCollectionName()]
	return &qdrant.CollectionExistsResponse{Result: &qdrant.CollectionExists{Exists: ok}}, nil
}

// Create implements qdrant.CollectionsServer.
func (s collectionsSrv) Create(_ context.Context, r *qdrant.CreateCollection) (*qdrant.CollectionOperationResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cols[r.GetCollectionName()]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "collection %q already exists", r.GetCollectionName())
	}
	c := &collection{dense: map[string]uint64{}, sparse: map[string]bool{}, points: map[string]*point{}, createdFor: r}
	if p := r.GetVectorsConfig().GetParams(); p != nil {
		c.dense[""] = p.GetSize()
	}
	for name, p := range r.GetVectorsConfig().GetParamsMap().GetMap() {
		if p.GetDistance() != qdrant.Distance_Cosine {
			return nil, status.Error(codes.Unimplemented, "fakeqdrant: only cosine distance")
		}
		c.dense[name] = p.GetSize()
	}
	for name, p := range r.GetSparseVectorsConfig().GetMap() {
		c.sparse[name] = p.GetModifier() == qdrant.Modifier_Idf
	}
	if len(c.dense) == 0 {
		return nil, status.Error(codes.InvalidArgument, "vectors config is required")
	}
	s.cols[r.GetCollectionName()] = c
	return &qdrant.CollectionOperationResponse{Result: true}, nil
}

func (s *Server) col(name string) (*collection, error) {
	c, ok := s.cols[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Collection `%s` doesn't exist!", name)
	}
	return c, nil
}

func pointID(id *qdrant.PointId) (string, error) {
	if u := id.GetUuid(); u != "" {
		return u, nil
	}
	return "", status.Error(codes.InvalidArgument, "fakeqdrant: only UUID point ids")
}

func normalized(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if s == 0 {
		return out
	}
	inv := 1 / math.Sqrt(s)
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

// newPoint checks ps's vectors against the collection's, as Qdrant does, and
// returns the point to store.
func (c *collection) newPoint(ps *qdrant.PointStruct) (*point, error) {
	p := &point{dense: map[string][]float32{}, sparse: map[string]map[uint32]float32{}, payload: ps.GetPayload()}
	vs := map[string]*qdrant.Vector{}
	if v := ps.GetVectors().GetVector(); v != nil {
		vs[""] = v
	}
	for name, v := range ps.GetVectors().GetVectors().GetVectors() {
		vs[name] = v
	}
	for name, v := range vs {
		var err error
		switch {
		case v.GetDense() != nil:
			p.dense[name], err = c.denseVector(name, v.GetDense().GetData())
		case v.GetSparse() != nil:
			p.sparse[name], err = c.sparseVector(name, v.GetSparse())
		default:
			err = status.Error(codes.Unimplemented, "fakeqdrant: only dense and sparse vectors")
		}
		if err != nil {
			return nil, err
		}
	}
	for name := range c.dense {
		if _, ok := p.dense[name]; !ok {
			return nil, status.Errorf(codes.InvalidArgument, "Wrong input: missing vector %q", name)
		}
	}
	return p, nil
}

// denseVector checks data against the collection's dense vector name and
// returns it normalised (the collections are cosine).
func (c *collection) denseVector(name string, data []float32) ([]float32, error) {
	size, ok := c.dense[name]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "Wrong input: Not existing vector name error: %s", name)
	}
	if uint64(len(data)) != size {
		return nil, status.Errorf(codes.InvalidArgument, "Wrong input: Vector dimension error: expected dim: %d, got %d", size, len(data))
	}
	return normalized(data), nil
}

// sparseVector checks sp against the collection's sparse vector name and
// returns it as index → value.
func (c *collection) sparseVector(name string, sp *qdrant.SparseVector) (map[uint32]float32, error) {
	if _, ok := c.sparse[name]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "Wrong input: Not existing vector name error: %s", name)
	}
	if len(sp.GetIndices()) != len(sp.GetValues()) {
		return nil, status.Error(codes.InvalidArgument, "sparse indices and values differ in length")
	}
	m := map[uint32]float32{}
	for i, ix := range sp.GetIndices() {
		m[ix] = sp.GetValues()[i]
	}
	return m, nil
}

// Upsert implements qdrant.PointsServer.
func (s pointsSrv) Upsert(_ context.Context, r *qdrant.UpsertPoints) (*qdrant.PointsOperationResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.col(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	staged := map[string]*point{}
	for _, ps := range r.GetPoints() {
		id, err := pointID(ps.GetId())
		if err != nil {
			return nil, err
		}
		if staged[id], err = c.newPoint(ps); err != nil {
			return nil, err
		}
	}
	for id, p := range staged {
		c.points[id] = p
	}
	return &qdrant.PointsOperationResponse{Result: &qdrant.UpdateResult{Status: qdrant.UpdateStatus_Completed}}, nil
}

// Delete implements qdrant.PointsServer.
func (s pointsSrv) Delete(_ context.Context, r *qdrant.DeletePoints) (*qdrant.PointsOperationResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.col(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	ids := r.GetPoints().GetPoints()
	if ids == nil {
		return nil, status.Error(codes.Unimplemented, "fakeqdrant: delete by id only")
	}
	for _, pid := range ids.GetIds() {
		id, err := pointID(pid)
		if err != nil {
			return nil, err
		}
		delete(c.points, id)
	}
	return &qdrant.PointsOperationResponse{Result: &qdrant.UpdateResult{Status: qdrant.UpdateStatus_Completed}}, nil
}

func selectPayload(sel *qdrant.WithPayloadSelector, p map[string]*qdrant.Value) map[string]*qdrant.Value {
	switch {
	case sel == nil:
		return nil
	case sel.GetInclude() != nil:
		out := map[string]*qdrant.Value{}
		for _, f := range sel.GetInclude().GetFields() {
			if v, ok := p[f]; ok {
				out[f] = v
			}
		}
		return out
	case sel.GetEnable():
		return p
	}
	return nil
}

// Scroll implements qdrant.PointsServer (ids in order, no filter).
func (s pointsSrv) Scroll(_ context.Context, r *qdrant.ScrollPoints) (*qdrant.ScrollResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.col(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	if r.GetFilter() != nil {
		return nil, status.Error(codes.Unimplemented, "fakeqdrant: scroll filter")
	}
	ids := make([]string, 0, len(c.points))
	for id := range c.points {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	start := 0
	if r.Offset != nil {
		off, err := pointID(r.GetOffset())
		if err != nil {
			return nil, err
		}
		start, _ = slices.BinarySearch(ids, off)
	}
	limit := int(r.GetLimit())
	if r.Limit == nil {
		limit = 10
	}
	resp := &qdrant.ScrollResponse{}
	end := min(start+limit, len(ids))
	for _, id := range ids[start:end] {
		resp.Result = append(resp.Result, &qdrant.RetrievedPoint{
			Id: qdrant.NewIDUUID(id), Payload: selectPayload(r.GetWithPayload(), c.points[id].payload),
		})
	}
	if end < len(ids) {
		resp.NextPageOffset = qdrant.NewIDUUID(ids[end])
	}
	return resp, nil
}

type scoredID struct {
	id    string
	score float32
}

// nearestDense scores every point by cosine similarity to v.
func (c *collection) nearestDense(v []float32, using string) ([]scoredID, error) {
	q, err := c.denseVector(using, v)
	if err != nil {
		return nil, err
	}
	out := make([]scoredID, 0, len(c.points))
	for id, p := range c.points {
		var s float32
		for i, x := range p.dense[using] {
			s += x * q[i]
		}
		out = append(out, scoredID{id, s})
	}
	return out, nil
}

// nearestSparse scores the points sharing a term with sp by dot product,
// weighted by Qdrant's IDF when the sparse vector has the idf modifier.
func (c *collection) nearestSparse(sp *qdrant.SparseVector, using string) ([]scoredID, error) {
	idf, ok := c.sparse[using]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "Wrong input: Not existing vector name error: %s", using)
	}
	df := map[uint32]int{}
	if idf {
		for _, p := range c.points {
			for ix := range p.sparse[using] {
				df[ix]++
			}
		}
	}
	n := float64(len(c.points))
	var out []scoredID
	for id, p := range c.points {
		var s float32
		for i, ix := range sp.GetIndices() {
			w, ok := p.sparse[using][ix]
			if !ok {
				continue
			}
			weight := float32(1)
			if idf {
				// Qdrant's IDF: ln(1 + (N - n + 0.5)/(n + 0.5)).
				d := float64(df[ix])
				weight = float32(math.Log(1 + (n-d+0.5)/(d+0.5)))
			}
			s += w * sp.GetValues()[i] * weight
		}
		if s > 0 { // sparse search returns only points sharing a term
			out = append(out, scoredID{id, s})
		}
	}
	return out, nil
}

func (c *collection) nearest(q *qdrant.Query, using string, limit int, threshold *float32) ([]scoredID, error) {
	in := q.GetNearest()
	if in == nil {
		return nil, status.Error(codes.Unimplemented, "fakeqdrant: only nearest, fusion and rrf queries")
	}
	var out []scoredID
	var err error
	switch {
	case in.GetDense() != nil:
		out, err = c.nearestDense(in.GetDense().GetData(), using)
	case in.GetSparse() != nil:
		out, err = c.nearestSparse(in.GetSparse(), using)
	default:
		err = status.Error(codes.Unimplemented, "fakeqdrant: only dense and sparse query vectors")
	}
	if err != nil {
		return nil, err
	}
	if threshold != nil {
		out = slices.DeleteFunc(out, func(s scoredID) bool { return s.score < *threshold })
	}
	slices.SortFunc(out, func(a, b scoredID) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return out[:min(limit, len(out))], nil
}

// rrf fuses ranked lists as Qdrant does: score = Σ 1/(k + position), with
// 0-based positions and Qdrant's default k = 2 (the top hit of a list adds 1/2).
func rrf(lists [][]scoredID, limit int) []scoredID {
	const k = 2
	sum := map[string]float32{}
	for _, l := range lists {
		for pos, s := range l {
			sum[s.id] += 1 / float32(k+pos)
		}
	}
	out := make([]scoredID, 0, len(sum))
	for id, s := range sum {
		out = append(out, scoredID{id, s})
	}
	slices.SortFunc(out, func(a, b scoredID) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return out[:min(limit, len(out))]
}

// Query implements qdrant.PointsServer.
func (s pointsSrv) Query(_ context.Context, r *qdrant.QueryPoints) (*qdrant.QueryResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastQuery = proto.Clone(r).(*qdrant.QueryPoints)
	c, err := s.col(r.GetCollectionName())
	if err != nil {
		return nil, err
	}
	if r.GetFilter() != nil {
		return nil, status.Error(codes.Unimplemented, "fakeqdrant: query filter")
	}
	limit := int(r.GetLimit())
	if r.Limit == nil {
		limit = 10
	}
	var res []scoredID
	switch {
	case len(r.GetPrefetch()) > 0:
		if r.GetQuery().GetFusion() != qdrant.Fusion_RRF || r.GetQuery().GetVariant() == nil {
			return nil, status.Error(codes.Unimplemented, "fakeqdrant: prefetch needs an RRF fusion query")
		}
		var lists [][]scoredID
		for _, pf := range r.GetPrefetch() {
			l, err := c.nearest(pf.GetQuery(), pf.GetUsing(), int(pf.GetLimit()), pf.ScoreThreshold)
			if err != nil {
				return nil, err
			}
			lists = append(lists, l)
		}
		res = rrf(lists, limit)
	default:
		if res, err = c.nearest(r.GetQuery(), r.GetUsing(), limit, r.ScoreThreshold); err != nil {
			return nil, err
		}
	}
	resp := &qdrant.QueryResponse{}
	for _, sc := range res {
		resp.Result = append(resp.Result, &qdrant.ScoredPoint{
			Id: qdrant.NewIDUUID(sc.id), Score: sc.score, Payload: selectPayload(r.GetWithPayload(), c.points[sc.id].payload),
		})
	}
	return resp, nil
}
