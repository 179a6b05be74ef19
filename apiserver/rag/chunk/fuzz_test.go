package chunk_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
)

// word is what the splitter never cuts: a run of RE2's \S, which unlike
// strings.Fields does not count \v as a space. (Words kept are compared
// with strings.Fields: a window's edges are trimmed of any Unicode space.)
var word = regexp.MustCompile(`\S+`)

// FuzzChunk: any file parses or is refused with an error, never a panic;
// a parsed page splits into chunks that cite the page's URL, have distinct
// ids, stay within MaxChars (but for a single word longer than that), and
// between them keep every word of every section.
func FuzzChunk(f *testing.F) {
	for _, seed := range []string{
		"", "# Title\n\nText.", "---\ntitle: T\nslug: /x\n---\n## A\n\nb\n## A\n\nc",
		"---\ntitle: [unclosed\n---\n", "---\nno end", "\ufeff# BOM\r\n\r\nwindows\r\n",
		"import X from './x';\n\n<X />\n\n# H {#custom-id}\n\n:::tip Title\nbody\n:::\n",
		"```go\n# not a heading\n```\n# Real\n" + strings.Repeat("word ", 300),
		"<!-- comment -->\n# `code` and **bold** [link](/x)\n\n" + strings.Repeat("x", 400),
	} {
		f.Add("docs/guide/page.md", seed)
	}
	f.Fuzz(func(t *testing.T, relPath, src string) {
		opt := chunk.Options{SiteURL: "https://docs.example.com", MaxChars: 200, Overlap: 40}
		page, err := chunk.Parse(relPath, []byte(src), opt)
		if err != nil {
			return
		}
		chunks := chunk.Split(page, opt)
		ids := map[string]bool{}
		for _, c := range chunks {
			if ids[c.ID] {
				t.Fatalf("two chunks have the id %s (%s#%s window %d)", c.ID, c.DocPath, c.Anchor, c.Index)
			}
			ids[c.ID] = true
			if !strings.HasPrefix(c.URL, page.URL) {
				t.Fatalf("chunk URL %q is not under the page's %q", c.URL, page.URL)
			}
			if len(c.Text) > opt.MaxChars && len(word.FindAllString(c.Text, 2)) > 1 {
				t.Fatalf("chunk of %d bytes over MaxChars %d: %q", len(c.Text), opt.MaxChars, c.Text)
			}
		}
		for _, s := range page.Sections {
			var inChunks []string
			for _, c := range chunks {
				if c.Anchor == s.Anchor && c.Heading == s.Heading {
					inChunks = append(inChunks, strings.Fields(c.Text)...)
				}
			}
			have := map[string]bool{}
			for _, w := range inChunks {
				have[w] = true
			}
			for _, w := range strings.Fields(s.Text) {
				if !have[w] {
					t.Fatalf("word %q of section %q is in no chunk", w, s.Heading)
				}
			}
		}
	})
}
