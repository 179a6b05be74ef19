package pgstore

import (
	"slices"
	"sync"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag/ragbench"
	"github.com/chatbackend/chatbackend/apiserver/rag/vectorstore"
)

// BM25F: the product's name, on every page, ranks nothing; a heading that
// names the question's subject outranks a body that mentions it; coverage
// says how much of the question a chunk holds, whatever the scores.
func TestLexicalRanking(t *testing.T) {
	g := NewWithT(t)
	lx := buildLexIndex([]vectorstore.Payload{
		{Title: "Acme", Text: "Acme Acme Acme. Acme is the product; Acme does everything Acme does."},
		{Title: "Acme upgrades", Heading: "Rotating signing keys", Text: "Call the endpoint. Old keys stay valid for a day."},
		{Title: "Acme reference", Heading: "Endpoints", Text: "The endpoint list. One of them is used for rotating keys among many other things."},
		{Title: "Acme install", Text: "Install Acme with the package manager."},
	})
	hits := lx.search(lx.query("How do I rotate the Acme signing keys?", ""), 3)
	g.Expect(hits).NotTo(BeEmpty())
	g.Expect(hits[0].row).To(Equal(1))
	g.Expect(hits[0].coverage).To(BeNumerically(">", 0.9))
	// The page that only repeats the product's name comes after both pages
	// about keys.
	g.Expect(hits[1].row).To(Equal(2))
	g.Expect(hits[2].coverage).To(BeNumerically("<", 0.1))

	// A question about something no page mentions covers little.
	hits = lx.search(lx.query("Does Acme support LDAP login?", ""), 3)
	for _, h := range hits {
		g.Expect(h.coverage).To(BeNumerically("<", 0.35))
	}
	g.Expect(lx.hit(lx.query("rotating signing keys", ""), 1).coverage).To(BeNumerically("~", 1, 1e-6))
	g.Expect(lx.hit(lx.query("rotating signing keys", ""), 3).coverage).To(BeNumerically("~", 0, 1e-6))
}

// A common English word no page uses ("different", "twice") does not
// count against coverage, in the lexical search as for a dense hit; a
// name no page uses ("Solaris") does.
func TestCoverageLeavesOutCommonWordsTheDocsNeverUse(t *testing.T) {
	g := NewWithT(t)
	lx := buildLexIndex([]vectorstore.Payload{
		{Title: "Repositories", Heading: "Sharing a repository", Text: "A file present on ten machines is stored once."},
		{Title: "FAQ", Heading: "Platforms", Text: "Acme supports Linux and macOS."},
		{Title: "Install", Text: "Install Acme with the package manager."},
	})
	hits := lx.search(lx.query("Are files on different machines stored twice?", ""), 1)
	g.Expect(hits).To(HaveLen(1))
	g.Expect(hits[0].row).To(Equal(0))
	g.Expect(hits[0].coverage).To(BeNumerically("~", 1, 1e-6))
	g.Expect(lx.hit(lx.query("Are files on different machines stored twice?", ""), 0).coverage).To(BeNumerically("~", 1, 1e-6))

	// The name outweighs the two words found (on a larger index, by more).
	hits = lx.search(lx.query("Does Acme support Solaris?", ""), 1)
	g.Expect(hits).To(HaveLen(1))
	g.Expect(hits[0].coverage).To(BeNumerically("<", 0.5))
	g.Expect(lx.hit(lx.query("Does Acme support Solaris?", ""), 1).coverage).To(BeNumerically("<", 0.5))
}

// A follow-up leans on the previous question: among the pages naming
// macOS, the install one wins after "How do I install Acme?", the upgrade
// one after "How do I upgrade Acme?"; coverage stays the follow-up's own.
func TestFollowUpLeansOnThePreviousQuestion(t *testing.T) {
	g := NewWithT(t)
	lx := buildLexIndex([]vectorstore.Payload{
		{Title: "Installing Acme", Heading: "Linux", Text: "Install the package with apt."},
		{Title: "Installing Acme", Heading: "macOS", Text: "Install with Homebrew."},
		{Title: "Upgrading Acme", Heading: "macOS", Text: "Upgrade with Homebrew; restart the service."},
		{Title: "Upgrading Acme", Heading: "Linux", Text: "Upgrade the package with apt."},
	})
	g.Expect(lx.search(lx.query("And on macOS?", "How do I install Acme?"), 1)[0].row).To(Equal(1))
	g.Expect(lx.search(lx.query("And on macOS?", "How do I upgrade Acme?"), 1)[0].row).To(Equal(2))
	// The follow-up's own subject still decides: the Linux pages share the
	// previous question's word, not the follow-up's.
	for _, h := range lx.search(lx.query("And on macOS?", "How do I install Acme?"), 4) {
		if h.row == 0 || h.row == 3 {
			g.Expect(h.coverage).To(BeZero())
		} else {
			g.Expect(h.coverage).To(BeNumerically("~", 1, 1e-6))
		}
	}
}

// Searches reuse their score accumulators: a question ranks the same after
// others as on a fresh index, concurrent ones included.
func TestRecycledAccumulatorsRankAsFreshOnes(t *testing.T) {
	text := ragbench.NewText(3)
	payloads := make([]vectorstore.Payload, 500)
	for i := range payloads {
		payloads[i] = vectorstore.Payload{Title: text.Words(3), Heading: text.Words(3), Text: text.Words(50)}
	}
	questions := make([]string, 20)
	for i := range questions {
		questions[i] = text.Words(5)
	}
	want := make([][]lexHit, len(questions))
	for i, q := range questions {
		fresh := buildLexIndex(payloads)
		want[i] = fresh.search(fresh.query(q, ""), 5)
	}
	lx := buildLexIndex(payloads)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for round := range 3 {
				for i, q := range questions {
					if got := lx.search(lx.query(q, ""), 5); !slices.Equal(got, want[i]) {
						t.Errorf("round %d, question %d: %v, fresh index: %v", round, i, got, want[i])
					}
				}
			}
		})
	}
	wg.Wait()
}

// hit scores one row as search does, the previous question's words
// included: hybrid fusion compares the dense candidates' BM25F scores with
// those search found.
func TestHitScoresARowAsSearchDoes(t *testing.T) {
	g := NewWithT(t)
	lx := buildLexIndex([]vectorstore.Payload{
		{Title: "Install", Heading: "On macOS", Text: "Install Acme with Homebrew on macOS."},
		{Title: "Install", Heading: "On Linux", Text: "Install Acme with the package manager."},
		{Title: "Uninstall", Heading: "On macOS", Text: "Remove the macOS app."},
		{Title: "FAQ", Text: "Nothing about it."},
	})
	q := lx.query("and on macOS?", "How do I install Acme?")
	hits := lx.search(q, 4)
	g.Expect(hits).To(HaveLen(3))
	for _, h := range hits {
		one := lx.hit(q, h.row)
		g.Expect(one.score).To(BeNumerically("~", h.score, 1e-5), "row %d", h.row)
		g.Expect(one.coverage).To(BeNumerically("~", h.coverage, 1e-5), "row %d", h.row)
	}
	g.Expect(lx.hit(q, 3)).To(Equal(lexHit{row: 3}))
}
