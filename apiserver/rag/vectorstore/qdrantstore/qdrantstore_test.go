package qdrantstore_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag/fakeqdrant"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore/qdrantstore"
)

func point(id string, v []float32, text string) vectorstore.Point {
	return vectorstore.Point{ID: id, Vector: v, Payload: vectorstore.Payload{
		DocPath: "a.md", URL: "https://s.io/docs/a#" + id[:4], Title: "A", Heading: "H " + id[:4], Text: text, ContentHash: "h-" + id[:4],
	}}
}

const (
	id1 = "11111111-1111-5111-8111-111111111111"
	id2 = "22222222-2222-5222-8222-222222222222"
)

func TestCollectionCreatedOnFirstUpsertWithPayload(t *testing.T) {
	for _, hybrid := range []bool{false, true} {
		g := NewWithT(t)
		ctx := context.Background()
		fq := fakeqdrant.Start(t, "secret")
		s, err := qdrantstore.New(qdrantstore.Options{URL: fq.URL, APIKey: "secret", Collection: "c", Hybrid: hybrid})
		g.Expect(err).NotTo(HaveOccurred())
		defer s.Close()

		// Nothing ingested yet: no collection, no hits, no error.
		hits, err := s.Search(ctx, vectorstore.Query{Vector: []float32{1, 0, 0}, Text: "alpha", Limit: 2})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hits).To(BeEmpty())
		g.Expect(fq.Collection("c")).To(BeNil())

		g.Expect(s.Upsert(ctx, []vectorstore.Point{point(id1, []float32{1, 0, 0}, "alpha words"), point(id2, []float32{0, 1, 0}, "beta words")})).To(Succeed())
		created := fq.Collection("c")
		g.Expect(created).NotTo(BeNil())
		dense := created.GetVectorsConfig().GetParamsMap().GetMap()[qdrantstore.DenseVector]
		g.Expect(dense.GetSize()).To(BeNumerically("==", 3))
		g.Expect(created.GetSparseVectorsConfig().GetMap()).To(HaveLen(map[bool]int{false: 0, true: 1}[hybrid]))

		hits, err = s.Search(ctx, vectorstore.Query{Vector: []float32{0.9, 0.1, 0}, Text: "alpha", Limit: 1})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hits).To(HaveLen(1))
		g.Expect(hits[0].ID).To(Equal(id1))
		g.Expect(hits[0].Payload).To(Equal(point(id1, nil, "alpha words").Payload))

		hashes, err := s.Hashes(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(hashes).To(Equal(map[string]string{id1: "h-1111", id2: "h-2222"}))
		g.Expect(s.Delete(ctx, []string{id1})).To(Succeed())
		g.Expect(fq.PointCount("c")).To(Equal(1))
		g.Expect(fq.Calls("/qdrant.Collections/Create")).To(Equal(1))
	}
}

func TestWrongAPIKeyIsAnError(t *testing.T) {
	g := NewWithT(t)
	fq := fakeqdrant.Start(t, "secret")
	s, err := qdrantstore.New(qdrantstore.Options{URL: fq.URL, APIKey: "nope"})
	g.Expect(err).NotTo(HaveOccurred())
	defer s.Close()
	_, err = s.Hashes(context.Background())
	g.Expect(err).To(MatchError(ContainSubstring("Unauthenticated")))
	g.Expect(err.Error()).NotTo(ContainSubstring("nope"))

	_, err = qdrantstore.New(qdrantstore.Options{URL: "::bad"})
	g.Expect(err).To(MatchError(ContainSubstring("QDRANT_URL")))
}

func TestScrollPagesThroughManyPoints(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	fq := fakeqdrant.Start(t, "")
	s, err := qdrantstore.New(qdrantstore.Options{URL: fq.URL})
	g.Expect(err).NotTo(HaveOccurred())
	defer s.Close()
	var ps []vectorstore.Point
	for i := range 2500 {
		id := []byte("00000000-0000-5000-8000-000000000000")
		copy(id[24:], []byte(padHex(i)))
		ps = append(ps, point(string(id), []float32{1, float32(i)}, "t"))
	}
	g.Expect(s.Upsert(ctx, ps)).To(Succeed())
	hashes, err := s.Hashes(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(hashes).To(HaveLen(2500))
	g.Expect(fq.Calls("/qdrant.Points/Scroll")).To(Equal(3))
}

func padHex(i int) string {
	const hex = "0123456789abcdef"
	b := []byte("000000000000")
	for p := len(b) - 1; i > 0; p-- {
		b[p] = hex[i%16]
		i /= 16
	}
	return string(b)
}
