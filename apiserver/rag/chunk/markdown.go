// Package chunk turns the Markdown and MDX pages of a Docusaurus docs folder
// into heading-sized chunks that carry the page's public URL and the heading's
// anchor, so every retrieved passage can be cited with a working link.
package chunk

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Options says where the pages are published and how big chunks get.
type Options struct {
	// SiteURL is the public URL of the site, including its baseUrl
	// (https://example.com or https://example.com/product/).
	SiteURL string
	// RouteBase is the docs plugin's routeBasePath ("/docs" by default in
	// Docusaurus; "/" when the docs are the whole site).
	RouteBase string
	// MaxChars bounds a chunk's text; longer sections are split in windows.
	MaxChars int
	// Overlap is how many characters of a window's tail start the next one,
	// so a sentence cut at a window edge is still found whole in one chunk.
	Overlap int
}

func (o Options) withDefaults() Options {
	if o.RouteBase == "" {
		o.RouteBase = "/docs"
	}
	if o.MaxChars <= 0 {
		o.MaxChars = 1500
	}
	if o.Overlap < 0 || o.Overlap >= o.MaxChars/2 {
		o.Overlap = o.MaxChars / 8
	}
	if o.Overlap == 0 {
		o.Overlap = 200
		if o.Overlap >= o.MaxChars/2 {
			o.Overlap = o.MaxChars / 8
		}
	}
	return o
}

// Page is one parsed document.
type Page struct {
	// Path is the file's path relative to the docs root, slash separated.
	Path string
	// Title comes from front matter `title`, else the first H1, else the id.
	Title string
	// URL is the page's public URL (no anchor).
	URL      string
	Sections []Section
	// Draft pages are not published, so they are not ingested.
	Draft bool
}

// Section is the text under one heading (Heading is empty for the text
// before the first heading).
type Section struct {
	Heading string
	// Anchor is the heading's id in the rendered page (empty for the page top).
	Anchor string
	Text   string
}

type frontMatter struct {
	Title string `yaml:"title"`
	Slug  string `yaml:"slug"`
	ID    string `yaml:"id"`
	Draft bool   `yaml:"draft"`
}

// Parse reads one Markdown/MDX file. relPath is its path under the docs root.
func Parse(relPath string, src []byte, opt Options) (Page, error) {
	opt = opt.withDefaults()
	relPath = path.Clean(strings.ReplaceAll(relPath, "\\", "/"))
	src = bytes.TrimPrefix(src, []byte("\ufeff"))
	src = bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))

	var fm frontMatter
	body := string(src)
	if strings.HasPrefix(body, "---\n") {
		end := strings.Index(body[4:], "\n---")
		if end < 0 {
			return Page{}, fmt.Errorf("%s: front matter opened with --- is never closed", relPath)
		}
		if err := yaml.Unmarshal([]byte(body[4:4+end]), &fm); err != nil {
			return Page{}, fmt.Errorf("%s: front matter: %w", relPath, err)
		}
		body = body[4+end+4:]
		body = strings.TrimPrefix(body, "\n")
	}

	lines := clean(body)
	p := Page{Path: relPath, Draft: fm.Draft}
	p.URL = joinURL(opt.SiteURL, route(relPath, fm, opt.RouteBase))
	p.Title = strings.TrimSpace(fm.Title)
	p.Sections = sections(lines, &p.Title)
	if p.Title == "" {
		p.Title = docID(relPath, fm)
	}
	return p, nil
}

// route is the page's path on the site, following Docusaurus's rules: number
// prefixes ("01-intro") are dropped, `id` replaces the file name, index and
// README files (and a file named like its folder) stand for the folder, and
// `slug` wins, absolute from the route base or relative to the folder.
func route(relPath string, fm frontMatter, base string) string {
	dir := path.Dir(relPath)
	var segs []string
	if dir != "." {
		for _, s := range strings.Split(dir, "/") {
			segs = append(segs, stripNumberPrefix(s))
		}
	}
	dirRoute := strings.Join(segs, "/")
	slug := strings.TrimSpace(fm.Slug)
	var rel string
	switch {
	case strings.HasPrefix(slug, "/"):
		rel = strings.TrimPrefix(slug, "/")
	case slug != "":
		rel = path.Join(dirRoute, slug)
	default:
		name := strings.TrimSuffix(path.Base(relPath), path.Ext(relPath))
		name = stripNumberPrefix(name)
		lower := strings.ToLower(name)
		isIndex := lower == "index" || lower == "readme" || (len(segs) > 0 && name == segs[len(segs)-1])
		switch {
		case fm.ID != "":
			rel = path.Join(dirRoute, fm.ID)
		case isIndex:
			rel = dirRoute
		default:
			rel = path.Join(dirRoute, name)
		}
	}
	r := path.Join("/", strings.Trim(base, "/"), rel)
	return r
}

func docID(relPath string, fm frontMatter) string {
	if fm.ID != "" {
		return fm.ID
	}
	return stripNumberPrefix(strings.TrimSuffix(path.Base(relPath), path.Ext(relPath)))
}

// Names that start like a version or a date ("2.4-2.5", "7.0-migration",
// "2021-11-notes") keep their prefix, as in Docusaurus's default number
// prefix parser (its issues 4640 and 4653): stripping "2." from Argo CD's
// upgrade guide "2.4-2.5.md" cited it at a URL that does not exist.
var (
	numberPrefix  = regexp.MustCompile(`^\d+[-_.\s]+`)
	versionPrefix = regexp.MustCompile(`^\d+[-_.]\d+`)
)

func stripNumberPrefix(s string) string {
	if versionPrefix.MatchString(s) {
		return s
	}
	if t := numberPrefix.ReplaceAllString(s, ""); t != "" {
		return t
	}
	return s
}

func joinURL(site, route string) string {
	site = strings.TrimRight(site, "/")
	if route == "/" {
		return site + "/"
	}
	return site + route
}

var (
	fenceRe      = regexp.MustCompile("^\\s*(```+|~~~+)")
	admonitionRe = regexp.MustCompile(`^\s*:::+\s*([A-Za-z]+)?(?:\[([^\]]*)\])?\s*(.*)$`)
	// mkdocsAdmonitionRe is Python-Markdown's admonition (`!!! warning
	// "Title"`) and pymdownx's collapsible details (`??? note`, `???+ tip`),
	// as mkdocs-material sites (Argo CD's docs, say) write them; their body
	// is the block indented below.
	// Strict, as prose can start with "!!!": at the line's start (a nested
	// one's once its parent's indent is removed), a space, one type word,
	// material's "inline"/"inline end" and a quoted title at most.
	mkdocsAdmonitionRe = regexp.MustCompile(`^(?:!!!|\?\?\?\+?) ([A-Za-z][\w-]*)(?: inline(?: end)?)?(?: +"([^"]*)")? *$`)
	// githubAlertRe is GitHub's alert, a blockquote opened by `> [!NOTE]`.
	githubAlertRe = regexp.MustCompile(`^\s*>\s*\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\s*$`)
	jsxTagRe      = regexp.MustCompile(`</?[A-Za-z][A-Za-z0-9.:_-]*(?:\s+[^<>]*?)?/?>`)
	mdxComment    = regexp.MustCompile(`\{/\*.*?\*/\}`)
	htmlComment   = regexp.MustCompile(`<!--.*?-->`)
	exprLineRe    = regexp.MustCompile(`^\s*\{[^}]*\}\s*$`)
	// esmStart is an MDX import/export statement, not prose that happens to
	// begin with "import" ("import the dashboard into Grafana").
	esmStart = regexp.MustCompile(`^(import\s+(['"]|[\w$]+\s*(,|from\s)|\*\s*as\s|\{|type\s)|export\s+(const|let|var|function|async|class|default|\{|\*|type|interface)\b)`)
)

// clean strips what a reader of the rendered page never sees as prose: ESM
// imports/exports, JSX/HTML tags (their text content is kept), comments and
// admonition fences (their body and title are kept). Code fences are kept
// verbatim because code samples are often the answer.
func clean(body string) []string {
	var c cleaner
	for _, line := range strings.Split(body, "\n") {
		c.add(line)
	}
	return c.out
}

// cleaner is the state of clean between lines: the constructs that span
// several lines.
type cleaner struct {
	out       []string
	code      codeFence
	esmDepth  int    // brace depth of a multi-line import/export
	inESM     bool   // inside a multi-line import/export statement
	inComment string // "-->" or "*/}" while inside a multi-line comment
	inOpenTag bool   // inside a JSX tag whose attributes span lines
	// inMkdocsBody: inside the indented body of an mkdocs admonition,
	// whose lines lose that indent (they are prose, not indented code).
	inMkdocsBody bool
}

// add cleans one line and appends what a reader sees of it to out.
func (c *cleaner) add(line string) {
	line, inBody := c.mkdocsBody(line)
	if c.code.consume(line) {
		c.out = append(c.out, line)
		return
	}
	line, ok := c.continued(line)
	// An admonition's body is prose: "import it, then restart" there is
	// not an MDX import (mkdocs pages have none).
	if !ok || !inBody && c.startESM(line) {
		return
	}
	line = c.stripComments(line)
	if title, ok := admonitionTitle(line); ok {
		if title != "" {
			c.out = append(c.out, title)
		}
		return
	}
	if title, ok := otherAdmonitionTitle(line); ok {
		c.out = append(c.out, title)
		c.inMkdocsBody = !githubAlertRe.MatchString(line)
		return
	}
	line = stripTags(line)
	// A tag opened on this line whose attributes continue below.
	if i := lastOpenTag(line); i >= 0 {
		line = line[:i]
		c.inOpenTag = true
	}
	if exprLineRe.MatchString(line) {
		return
	}
	c.out = append(c.out, line)
}

// continued consumes the part of line that belongs to a comment, an
// import/export or a tag begun on an earlier line. It returns the rest of
// the line, and false when nothing of it is left to clean.
func (c *cleaner) continued(line string) (string, bool) {
	if c.inComment != "" {
		i := strings.Index(line, c.inComment)
		if i < 0 {
			return "", false
		}
		line = line[i+len(c.inComment):]
		c.inComment = ""
	}
	if c.inESM {
		c.esmDepth += strings.Count(line, "{") - strings.Count(line, "}")
		trimmed := strings.TrimSpace(line)
		if c.esmDepth <= 0 && (strings.Contains(line, " from ") || strings.HasSuffix(trimmed, ";") || strings.HasSuffix(trimmed, "}") || strings.HasSuffix(trimmed, ")")) {
			c.inESM = false
		}
		return "", false
	}
	if c.inOpenTag {
		i := strings.Index(line, ">")
		if i < 0 {
			return "", false
		}
		line = line[i+1:]
		c.inOpenTag = false
	}
	return line, true
}

// startESM reports whether line starts an import/export statement (dropped),
// noting whether the statement continues on the next lines.
func (c *cleaner) startESM(line string) bool {
	if !esmStart.MatchString(line) {
		return false
	}
	trimmed := strings.TrimSpace(line)
	c.esmDepth = strings.Count(line, "{") - strings.Count(line, "}")
	complete := c.esmDepth <= 0 && (strings.Contains(line, " from ") || strings.HasSuffix(trimmed, ";") ||
		(strings.HasPrefix(trimmed, "import ") && strings.Count(trimmed, "'")+strings.Count(trimmed, `"`) >= 2) ||
		strings.HasSuffix(trimmed, "}") || strings.HasSuffix(trimmed, ")"))
	c.inESM = !complete
	return true
}

// stripComments removes the comments closed on line and cuts at one that
// stays open, remembering its closer.
func (c *cleaner) stripComments(line string) string {
	line = mdxComment.ReplaceAllString(line, "")
	line = htmlComment.ReplaceAllString(line, "")
	if i := strings.Index(line, "<!--"); i >= 0 {
		line, c.inComment = line[:i], "-->"
	} else if i := strings.Index(line, "{/*"); i >= 0 {
		line, c.inComment = line[:i], "*/}"
	}
	return line
}

// admonitionTitle reports whether line is an admonition fence. ":::tip[Title]"
// and ":::tip Title" keep the title as a line of text ("Tip: Title"); the bare
// closing ":::" yields "".
func admonitionTitle(line string) (string, bool) {
	m := admonitionRe.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	title := strings.TrimSpace(m[2] + " " + m[3])
	if m[1] == "" {
		return title, true
	}
	label := strings.ToUpper(m[1][:1]) + strings.ToLower(m[1][1:])
	if title == "" {
		return label + ":", true
	}
	return label + ": " + title, true
}

// otherAdmonitionTitle is admonitionTitle for the markers of mkdocs
// (`!!! warning "Title"`, `??? note`) and GitHub (`> [!NOTE]`): the marker
// becomes the label a reader sees ("Warning: Title", "Note:") instead of
// "!!! warning" in the index and in a quoted answer.
func otherAdmonitionTitle(line string) (string, bool) {
	kind, title := "", ""
	if m := mkdocsAdmonitionRe.FindStringSubmatch(line); m != nil {
		kind, title = m[1], strings.TrimSpace(m[2])
	} else if m := githubAlertRe.FindStringSubmatch(line); m != nil {
		kind = m[1]
	} else {
		return "", false
	}
	label := strings.ToUpper(kind[:1]) + strings.ToLower(kind[1:])
	if title == "" {
		return label + ":", true
	}
	return label + ": " + title, true
}

// mkdocsBody removes the indent of an mkdocs admonition's body from line
// (four spaces or a tab, Python-Markdown's) and says whether line is in
// one; a line indented less that is not blank ends the body.
func (c *cleaner) mkdocsBody(line string) (string, bool) {
	if !c.inMkdocsBody {
		return line, false
	}
	switch {
	case strings.HasPrefix(line, "    "):
		return line[4:], true
	case strings.HasPrefix(line, "\t"):
		return line[1:], true
	case strings.TrimSpace(line) == "":
		return line, true
	}
	c.inMkdocsBody = false
	return line, false
}

// openTagStart is a JSX element opened at the start of a line whose
// attributes continue on the next lines.
var openTagStart = regexp.MustCompile(`^\s*<[A-Za-z][A-Za-z0-9.:_-]*(\s[^>]*)?$`)

func lastOpenTag(line string) int {
	if loc := openTagStart.FindStringIndex(line); loc != nil && !insideInlineCode(line, loc[0]) {
		return loc[0]
	}
	return -1
}

// stripTags removes JSX/HTML tags outside inline code spans, keeping the text
// between them and the text a reader sees in their attributes: a tab's
// label (<TabItem label="Debian">), a title, an image's alt text. Without
// them the per-platform tabs of an install page merge into one unlabelled
// text.
func stripTags(line string) string {
	if !strings.Contains(line, "<") {
		return line
	}
	parts := strings.Split(line, "`")
	for i := 0; i < len(parts); i += 2 { // even parts are outside `code`
		parts[i] = jsxTagRe.ReplaceAllStringFunc(parts[i], tagText)
	}
	return strings.Join(parts, "`")
}

// visibleAttr is an attribute whose value a reader sees on the page.
var visibleAttr = regexp.MustCompile(`\b(?:label|title|alt)=(?:"([^"]*)"|'([^']*)')`)

// tagText is what a reader sees of a tag: its visible attributes' values.
func tagText(tag string) string {
	var vals []string
	for _, m := range visibleAttr.FindAllStringSubmatch(tag, -1) {
		if v := strings.TrimSpace(m[1] + m[2]); v != "" {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return ""
	}
	return strings.Join(vals, " ") + ": "
}

func insideInlineCode(line string, at int) bool {
	return strings.Count(line[:at], "`")%2 == 1
}

var headingRe = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*(?:\{#([^}\s]+)\})?\s*#*\s*$`)

func sections(lines []string, title *string) []Section {
	var secs []Section
	cur := Section{}
	var buf []string
	slugs := newSlugger()
	var code codeFence
	firstH1 := true
	flush := func() {
		cur.Text = strings.TrimSpace(collapseBlank(buf))
		if cur.Text != "" {
			secs = append(secs, cur)
		}
		buf = nil
	}
	for _, line := range lines {
		if code.consume(line) {
			buf = append(buf, line)
			continue
		}
		m := headingRe.FindStringSubmatch(line)
		if m == nil {
			buf = append(buf, line)
			continue
		}
		text := plainInline(m[2])
		if len(m[1]) == 1 && *title == "" {
			*title = text
		}
		anchor := m[3]
		if anchor == "" {
			anchor = slugs.slug(text)
		} else {
			slugs.seen[anchor] = 0
		}
		if len(m[1]) == 1 && firstH1 || anchor == "" {
			// The first H1 is the page title: the text around it is the
			// page top, one section (later H1s start sections of their
			// own). A heading with no anchor (empty, or punctuation only)
			// cannot be linked to: its text continues the section it is
			// in. Either would otherwise start a second section without an
			// anchor, with the page top's chunk id, and the later one would
			// overwrite the page top in the index.
			firstH1 = firstH1 && len(m[1]) != 1
			continue
		}
		flush()
		cur = Section{Heading: text, Anchor: anchor}
	}
	flush()
	return secs
}

func collapseBlank(lines []string) string {
	var b strings.Builder
	blank := 0
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			blank++
			continue
		}
		if b.Len() > 0 {
			if blank > 0 {
				b.WriteString("\n\n")
			} else {
				b.WriteString("\n")
			}
		}
		blank = 0
		b.WriteString(strings.TrimRight(l, " \t"))
	}
	return b.String()
}

var (
	linkRe     = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	emphasisRe = regexp.MustCompile(`(\*\*|__|\*|_|~~)([^*_~]+)(\*\*|__|\*|_|~~)`)
)

// plainInline reduces inline Markdown to the text a reader sees, as the
// heading slugger does before computing an anchor.
func plainInline(s string) string {
	s = linkRe.ReplaceAllString(s, "$1")
	s = emphasisRe.ReplaceAllString(s, "$2")
	s = strings.ReplaceAll(s, "`", "")
	s = jsxTagRe.ReplaceAllString(s, "")
	return strings.TrimSpace(s)
}

// slugger reproduces github-slugger, which Docusaurus uses for heading ids:
// lower case, punctuation dropped, spaces to hyphens, duplicates suffixed -1, -2...
type slugger struct{ seen map[string]int }

func newSlugger() *slugger { return &slugger{seen: map[string]int{}} }

func (s *slugger) slug(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	original := b.String()
	slug := original
	for {
		if _, taken := s.seen[slug]; !taken {
			break
		}
		s.seen[original]++
		slug = fmt.Sprintf("%s-%d", original, s.seen[original])
	}
	s.seen[slug] = 0
	return slug
}

// codeFence tracks fenced code blocks, whose lines are kept verbatim and never
// read as headings, JSX or comments.
type codeFence struct{ closer string }

// consume reports whether line belongs to a code block (its opening fence,
// body or closing fence), updating the state.
func (f *codeFence) consume(line string) bool {
	if f.closer != "" {
		if strings.HasPrefix(strings.TrimSpace(line), f.closer) {
			f.closer = ""
		}
		return true
	}
	if m := fenceRe.FindStringSubmatch(line); m != nil {
		f.closer = m[1]
		return true
	}
	return false
}
