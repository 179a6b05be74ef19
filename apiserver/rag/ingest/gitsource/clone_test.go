package gitsource_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/gitsource"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/source"
	"github.com/chatbackend/chatbackend/internal/gittest"
)

func read(t *testing.T, co gitsource.Checkout, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(co.Dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func clone(t *testing.T, g source.Git) (gitsource.Checkout, error) {
	t.Helper()
	co, err := gitsource.Clone(context.Background(), g)
	if err == nil {
		t.Cleanup(func() { _ = co.Remove() })
	}
	return co, err
}

// A branch, a tag and a commit hash each check out their own tree, of the
// docs folder only, in $TMPDIR; Remove deletes the clone.
func TestCloneRefs(t *testing.T) {
	g := NewWithT(t)
	repo := gittest.New(t)
	first := repo.Commit("v1", map[string]string{"docs/intro.md": "# One", "README.md": "root"})
	repo.Tag("v1.0")
	repo.Commit("v2", map[string]string{"docs/intro.md": "# Two"})
	url := repo.Serve("", "")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	co, err := clone(t, source.Git{URL: url, Path: "docs"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(read(t, co, "intro.md")).To(Equal("# Two"))
	g.Expect(co.Dir).To(HavePrefix(tmp))
	g.Expect(co.Dir).To(HaveSuffix(string(filepath.Separator) + "docs"))

	for ref, want := range map[string]string{"main": "# Two", "v1.0": "# One", first: "# One"} {
		co, err := clone(t, source.Git{URL: url, Ref: ref, Path: "/docs/"})
		g.Expect(err).NotTo(HaveOccurred(), ref)
		g.Expect(read(t, co, "intro.md")).To(Equal(want), ref)
		if ref == first {
			g.Expect(co.Commit).To(Equal(first))
		}
	}
	g.Expect(co.Remove()).To(Succeed())
	g.Expect(co.Dir).NotTo(BeADirectory())

	_, err = clone(t, source.Git{URL: url, Ref: "nope"})
	g.Expect(err).To(MatchError(ContainSubstring(`no branch or tag "nope"`)))
	_, err = clone(t, source.Git{URL: url, Path: "missing"})
	g.Expect(err).To(MatchError(ContainSubstring(`has no folder "missing"`)))
	// ".." cannot climb out of the clone: it is the repository's root.
	co, err = clone(t, source.Git{URL: url, Path: "../../docs"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(read(t, co, "intro.md")).To(Equal("# Two"))
	g.Expect(co.Remove()).To(Succeed())
	entries, err := os.ReadDir(tmp)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(entries).To(HaveLen(3), "the three ref clones are left for cleanup; failed and removed clones are gone")
}

// Credentials come from Secret files with Flux's key names.
func TestCloneWithBasicAuth(t *testing.T) {
	g := NewWithT(t)
	repo := gittest.New(t)
	repo.Commit("v1", map[string]string{"intro.md": "# Private"})
	url := repo.Serve("reader", "s3cret")

	_, err := clone(t, source.Git{URL: url})
	g.Expect(err).To(MatchError(ContainSubstring("authentication required")))

	auth := t.TempDir()
	g.Expect(os.WriteFile(filepath.Join(auth, "username"), []byte("reader"), 0o600)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(auth, "password"), []byte("wrong\n"), 0o600)).To(Succeed())
	_, err = clone(t, source.Git{URL: url, AuthDir: auth})
	g.Expect(err).To(HaveOccurred())

	g.Expect(os.WriteFile(filepath.Join(auth, "password"), []byte("s3cret\n"), 0o600)).To(Succeed())
	co, err := clone(t, source.Git{URL: url, AuthDir: auth})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(read(t, co, "intro.md")).To(Equal("# Private"))

	_, err = clone(t, source.Git{URL: url, AuthDir: t.TempDir()})
	g.Expect(err).To(MatchError(ContainSubstring("want username and password, or bearerToken")))
	_, err = clone(t, source.Git{URL: "ssh://git@127.0.0.1:1/repo.git", AuthDir: auth})
	g.Expect(err).To(MatchError(ContainSubstring("an ssh URL needs identity")))
}
