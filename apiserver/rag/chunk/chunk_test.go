package chunk_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
)

const site = "https://docs.acme.example"

func parseTestdata(t *testing.T, rel string) chunk.Page {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "testdata", "docs", rel))
	if err != nil {
		t.Fatal(err)
	}
	p, err := chunk.Parse(rel, src, chunk.Options{SiteURL: site})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoutesFollowDocusaurus(t *testing.T) {
	g := NewWithT(t)
	for _, tc := range []struct{ file, url, title string }{
		{"intro.md", site + "/docs", "Welcome to Acme Docs"},
		{"01-getting-started/01-installation.mdx", site + "/docs/getting-started/install", "Installation"},
		{"guides/authentication.md", site + "/docs/guides/auth-guide", "Authentication"},
		{"guides/rate-limits.md", site + "/docs/guides/rate-limits", "Rate limits"},
		{"reference/index.md", site + "/docs/reference", "Reference"},
		{"reference/vector-store.md", site + "/docs/reference/vector-store", "Vector store"},
	} {
		p := parseTestdata(t, tc.file)
		g.Expect(p.URL).To(Equal(tc.url), tc.file)
		g.Expect(p.Title).To(Equal(tc.title), tc.file)
	}
}

func TestRouteVariants(t *testing.T) {
	g := NewWithT(t)
	for _, tc := range []struct{ name, file, src, base, site, want string }{
		{"absolute slug", "a/b.md", "---\nslug: /x/y\n---\ntext", "/docs", "https://s.io", "https://s.io/docs/x/y"},
		{"site with baseUrl", "a.md", "text", "/docs", "https://s.io/product/", "https://s.io/product/docs/a"},
		{"docs at root", "a/README.md", "text", "/", "https://s.io", "https://s.io/a"},
		{"folder-named index", "guides/guides.md", "text", "/docs", "https://s.io", "https://s.io/docs/guides"},
		{"id in folder", "02-x/f.md", "---\nid: custom\n---\ntext", "/docs", "https://s.io", "https://s.io/docs/x/custom"},
		// Docusaurus keeps prefixes that look like a version or a date.
		{"version-like name", "upgrading/2.4-2.5.md", "text", "/", "https://s.io", "https://s.io/upgrading/2.4-2.5"},
		{"version-like folder", "7.0-migration/intro.md", "text", "/docs", "https://s.io", "https://s.io/docs/7.0-migration/intro"},
		{"date-like name", "2021-11-notes.md", "text", "/docs", "https://s.io", "https://s.io/docs/2021-11-notes"},
		{"number prefix still dropped", "03_setup.md", "text", "/docs", "https://s.io", "https://s.io/docs/setup"},
	} {
		p, err := chunk.Parse(tc.file, []byte(tc.src), chunk.Options{SiteURL: tc.site, RouteBase: tc.base})
		g.Expect(err).NotTo(HaveOccurred(), tc.name)
		g.Expect(p.URL).To(Equal(tc.want), tc.name)
	}
}

func TestMDXIsCleaned(t *testing.T) {
	g := NewWithT(t)
	p := parseTestdata(t, "01-getting-started/01-installation.mdx")
	var all strings.Builder
	for _, s := range p.Sections {
		all.WriteString(s.Text + "\n")
	}
	text := all.String()
	for _, gone := range []string{"import ", "@theme/Tabs", "Highlight", "<Tabs>", "<TabItem", "</TabItem>", "label=", "MDX comment", "HTML comment", ":::", "export const", "<span>"} {
		g.Expect(text).NotTo(ContainSubstring(gone))
	}
	for _, kept := range []string{"Tip: Use a dedicated namespace", "kubectl delete namespace", "helm install acme acme/acme-operator", "Nightly builds use the `--devel` flag."} {
		g.Expect(text).To(ContainSubstring(kept))
	}
	var anchors []string
	for _, s := range p.Sections {
		anchors = append(anchors, s.Anchor)
	}
	g.Expect(anchors).To(Equal([]string{"", "prerequisites", "helm"}))
}

func TestProseThatLooksLikeCodeIsKept(t *testing.T) {
	g := NewWithT(t)
	src := "import Foo from './foo';\nexport const x = 1;\n\nimport the dashboard into Grafana.\nexport your settings first.\nvalues <threshold\nstay here.\n"
	p, err := chunk.Parse("p.mdx", []byte(src), chunk.Options{SiteURL: site})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.Sections).To(HaveLen(1))
	g.Expect(p.Sections[0].Text).To(Equal("import the dashboard into Grafana.\nexport your settings first.\nvalues <threshold\nstay here."))
}

func TestBadFrontMatterIsAnError(t *testing.T) {
	g := NewWithT(t)
	_, err := chunk.Parse("x.md", []byte("---\ntitle: [unclosed\n---\nbody"), chunk.Options{SiteURL: site})
	g.Expect(err).To(MatchError(ContainSubstring("x.md: front matter")))
	_, err = chunk.Parse("y.md", []byte("---\ntitle: x\nbody"), chunk.Options{SiteURL: site})
	g.Expect(err).To(MatchError(ContainSubstring("never closed")))
}

func TestHeadingAnchorsLikeGithubSlugger(t *testing.T) {
	g := NewWithT(t)
	src := "## Hello, World!\na\n## Hello World\nb\n## Hello World\nc\n## `code` and [link](x) **bold**\nd\n## Ünïcode & stuff\ne\n"
	p, err := chunk.Parse("h.md", []byte(src), chunk.Options{SiteURL: site})
	g.Expect(err).NotTo(HaveOccurred())
	var anchors []string
	for _, s := range p.Sections {
		anchors = append(anchors, s.Anchor)
	}
	g.Expect(anchors).To(Equal([]string{"hello-world", "hello-world-1", "hello-world-2", "code-and-link-bold", "ünïcode--stuff"}))
}

func TestSplitWindowsOverlapAndIDsAreDeterministic(t *testing.T) {
	g := NewWithT(t)
	var words []string
	for i := 0; i < 400; i++ {
		words = append(words, "word"+strings.Repeat("x", i%7))
	}
	src := "## Long\n\n" + strings.Join(words, " ")
	opt := chunk.Options{SiteURL: site, MaxChars: 500, Overlap: 100}
	p, err := chunk.Parse("long.md", []byte(src), opt)
	g.Expect(err).NotTo(HaveOccurred())
	cs := chunk.Split(p, opt)
	g.Expect(len(cs)).To(BeNumerically(">", 3))
	for i, c := range cs {
		g.Expect(len(c.Text)).To(BeNumerically("<=", 500))
		g.Expect(c.Index).To(Equal(i))
		g.Expect(c.URL).To(Equal(site + "/docs/long#long"))
		g.Expect(c.ID).To(Equal(chunk.PointID("long.md", "long", i)))
		if i > 0 {
			prev := cs[i-1].Text
			tail := prev[len(prev)-40:]
			g.Expect(c.Text).To(ContainSubstring(strings.TrimSpace(tail[strings.Index(tail, " "):])), "window %d overlaps the previous one", i)
		}
	}
	again := chunk.Split(p, opt)
	g.Expect(again).To(Equal(cs))
	g.Expect(chunk.PointID("a.md", "x", 0)).NotTo(Equal(chunk.PointID("a.md", "x", 1)))
}

// Inside a fenced code block nothing is Markdown or MDX: a "# comment" line is
// not a heading and JSX-looking or import lines are kept verbatim, for both
// fence styles, until the matching closing fence.
func TestCodeFencesAreKeptVerbatim(t *testing.T) {
	g := NewWithT(t)
	src := "## Install\n\n```bash\n# not a heading\nimport x from 'y'\n<Tabs>\n```\n\n~~~~\n## still code\n```\n~~~~\n\n## After\ntext\n"
	p, err := chunk.Parse("f.mdx", []byte(src), chunk.Options{SiteURL: site})
	g.Expect(err).NotTo(HaveOccurred())
	var anchors []string
	for _, s := range p.Sections {
		anchors = append(anchors, s.Anchor)
	}
	g.Expect(anchors).To(Equal([]string{"install", "after"}))
	for _, kept := range []string{"# not a heading", "import x from 'y'", "<Tabs>", "## still code"} {
		g.Expect(p.Sections[0].Text).To(ContainSubstring(kept))
	}
}

// Tab labels and admonition titles are text a reader sees: they stay, so
// each platform's tab keeps its name. A second H1 starts its own section.
func TestVisibleAttributesAndSeveralH1s(t *testing.T) {
	g := NewWithT(t)
	src := "Before the title.\n\n# Install\n\n<Tabs>\n<TabItem value=\"deb\" label=\"Debian\">\n\nRun apt.\n\n</TabItem>\n" +
		"<TabItem value='mac' label='macOS'>\n\nRun brew.\n\n</TabItem>\n</Tabs>\n\n:::warning[Root needed]\nUse sudo.\n:::\n\n# Upgrade\n\nRun it again.\n"
	p, err := chunk.Parse("install.mdx", []byte(src), chunk.Options{SiteURL: site})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.Title).To(Equal("Install"))
	g.Expect(p.Sections).To(HaveLen(2))
	g.Expect(p.Sections[0].Text).To(ContainSubstring("Before the title."))
	g.Expect(p.Sections[0].Text).To(ContainSubstring("Debian:\n\nRun apt."))
	g.Expect(p.Sections[0].Text).To(ContainSubstring("macOS:\n\nRun brew."))
	g.Expect(p.Sections[0].Text).To(ContainSubstring("Warning: Root needed"))
	g.Expect(p.Sections[0].Text).NotTo(ContainSubstring("deb\""))
	g.Expect(p.Sections[1].Heading).To(Equal("Upgrade"))
	g.Expect(p.Sections[1].Anchor).To(Equal("upgrade"))
}

// mkdocs admonitions and GitHub alerts: the marker becomes the label a
// reader sees, and an mkdocs body loses its indent (it is prose, and a
// fence in it is still code); the first line indented less ends the body.
func TestMkdocsAdmonitionsAndGitHubAlerts(t *testing.T) {
	g := NewWithT(t)
	src := "# Sync\n\n!!! warning \"Prune deletes resources\"\n    Resources missing from Git are deleted.\n\n" +
		"    ```yaml\n    prune: true\n    ```\n\nAfter the box.\n\n??? note\n    Folded text.\n\n" +
		"!!! tip inline end \"Aside\"\n    Side text.\n    import it, then restart.\n\n> [!NOTE]\n> An alert body.\n\n" +
		"!!! Read this first\n    # not a heading\n"
	p, err := chunk.Parse("sync.md", []byte(src), chunk.Options{SiteURL: site})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(p.Sections).To(HaveLen(1))
	text := p.Sections[0].Text
	g.Expect(text).To(ContainSubstring("Warning: Prune deletes resources\nResources missing from Git are deleted."))
	g.Expect(text).To(ContainSubstring("```yaml\nprune: true\n```"))
	g.Expect(text).To(ContainSubstring("\n\nAfter the box."))
	g.Expect(text).To(ContainSubstring("Note:\nFolded text."))
	g.Expect(text).To(ContainSubstring("Tip: Aside\nSide text.\nimport it, then restart."))
	// Prose that starts with "!!!" is not an admonition: kept as it is,
	// and so is the indent below it.
	g.Expect(text).To(ContainSubstring("!!! Read this first\n    # not a heading"))
	g.Expect(text).To(ContainSubstring("Note:\n> An alert body."))
	g.Expect(text).NotTo(ContainSubstring("!!! warning"))
	g.Expect(text).NotTo(ContainSubstring("???"))
	g.Expect(text).NotTo(ContainSubstring("[!NOTE]"))
}
