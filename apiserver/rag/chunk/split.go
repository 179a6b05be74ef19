package chunk

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Chunk is one retrievable passage.
type Chunk struct {
	// ID is derived from DocPath, Anchor and Index, never random, so
	// re-ingesting a page addresses the same points.
	ID      string
	DocPath string
	// URL is the page URL plus "#anchor" when the chunk is under a heading.
	URL     string
	Title   string
	Heading string
	Anchor  string
	// Index is the chunk's position among the windows of its section.
	Index int
	Text  string
}

// idNamespace scopes the UUIDv5 point ids of this project.
var idNamespace = uuid.MustParse("6f1c2a7e-3b8d-5c4e-9a10-2f7d8e6b4c31")

// PointID is the deterministic id of a chunk (UUIDv5 of path, heading anchor
// and window index), the form Qdrant accepts as a point id.
func PointID(docPath, anchor string, index int) string {
	return uuid.NewSHA1(idNamespace, []byte(docPath+"\x00"+anchor+"\x00"+strconv.Itoa(index))).String()
}

// EmbedText is what gets embedded: the page title and heading give a short
// passage the context a reader has when they see it on the page.
func (c Chunk) EmbedText() string {
	head := c.Title
	if c.Heading != "" && c.Heading != c.Title {
		head += " — " + c.Heading
	}
	return head + "\n\n" + c.Text
}

// Split cuts a page into chunks: one per heading section, and a section longer
// than MaxChars into overlapping windows along paragraph and word boundaries.
func Split(p Page, opt Options) []Chunk {
	opt = opt.withDefaults()
	var out []Chunk
	for _, s := range p.Sections {
		url := p.URL
		if s.Anchor != "" {
			url += "#" + s.Anchor
		}
		for i, text := range windows(s.Text, opt.MaxChars, opt.Overlap) {
			out = append(out, Chunk{
				ID:      PointID(p.Path, s.Anchor, i),
				DocPath: p.Path,
				URL:     url,
				Title:   p.Title,
				Heading: s.Heading,
				Anchor:  s.Anchor,
				Index:   i,
				Text:    text,
			})
		}
	}
	return out
}

var tokenRe = regexp.MustCompile(`\S+\s*`)

func windows(text string, maxChars, overlap int) []string {
	if len(text) <= maxChars {
		return []string{text}
	}
	// Tokens keep their trailing whitespace so that windows keep the
	// paragraphs and code lines of the original.
	toks := tokenRe.FindAllString(text, -1)
	var out []string
	start := 0
	for start < len(toks) {
		n, end := 0, start
		for end < len(toks) && (n == 0 || n+len(toks[end]) <= maxChars) {
			n += len(toks[end])
			end++
		}
		out = append(out, strings.TrimSpace(strings.Join(toks[start:end], "")))
		if end >= len(toks) {
			break
		}
		// Step back over the last ~overlap characters for the next window,
		// always moving forward by at least one token.
		back, k := 0, end
		for k > start+1 && back+len(toks[k-1]) <= overlap {
			back += len(toks[k-1])
			k--
		}
		start = k
	}
	return out
}
