package rag_test

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag"
)

func TestConfigFromEnv(t *testing.T) {
	g := NewWithT(t)
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	c, err := rag.ConfigFromEnv(env(nil))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Offline()).To(BeTrue())
	g.Expect(c.TopK).To(Equal(5))

	c, err = rag.ConfigFromEnv(env(map[string]string{"QDRANT_URL": "http://qdrant:6334", "QDRANT_HYBRID": "true", "OPENAI_API_KEY": "k", "RAG_TOP_K": "8"}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.QdrantHybrid).To(BeTrue())
	g.Expect(c.Offline()).To(BeFalse())
	g.Expect(c.TopK).To(Equal(8))

	for name, bad := range map[string]map[string]string{
		"QDRANT_URL":         {"QDRANT_URL": "qdrant:6334"},
		"OPENAI_BASE_URL":    {"OPENAI_BASE_URL": "ftp://x"},
		"QDRANT_HYBRID":      {"QDRANT_HYBRID": "maybe"},
		"RAG_TOP_K":          {"RAG_TOP_K": "0"},
		"RAG_HISTORY_TOKENS": {"RAG_HISTORY_TOKENS": "lots"},
	} {
		_, err := rag.ConfigFromEnv(env(bad))
		g.Expect(err).To(MatchError(HavePrefix(name+":")), name)
	}
}
