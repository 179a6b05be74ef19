package site

import (
	"fmt"
	"html"
	"io"
	"net/url"
	"strings"
	"unicode"

	md "github.com/JohannesKaufmann/html-to-markdown/v2/converter"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/base"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/commonmark"
	"github.com/JohannesKaufmann/html-to-markdown/v2/plugin/table"
	"github.com/PuerkitoBio/goquery"
)

// Extracted is what a page holds for the index.
type Extracted struct {
	// Title is the content's first H1, else the document's <title>.
	Title string
	// Markdown is the main content. Every heading that can be linked to
	// carries its id as a Docusaurus heading id ("## Install {#install}"),
	// which the Markdown chunker takes as the section's anchor; a heading
	// with no id becomes bold text, since a citation could not land on it.
	Markdown string
	// Links are the page's links (navigation included), absolute, without
	// fragment.
	Links []string
}

// mainContent lists where generators put a page's own content, most
// specific first: Docusaurus and MkDocs Material put an <article> in
// <main>, Sphinx themes use role=main, Hugo themes <main>.
var mainContent = []string{"main article", "[role=main]", "main", "article"}

// chrome is what surrounds the content on every page: navigation, headers
// and footers, sidebars, and what is not text.
const chrome = "nav, header, footer, aside, script, style, noscript, template, svg, form, button, iframe, " +
	"[role=navigation], [role=banner], [role=contentinfo], [role=complementary], [aria-hidden=true]"

var converter = md.NewConverter(md.WithPlugins(base.NewBasePlugin(), commonmark.NewCommonmarkPlugin(), table.NewTablePlugin()))

// Extract reads an HTML page fetched from pageURL.
func Extract(pageURL *url.URL, r io.Reader) (Extracted, error) {
	doc, err := goquery.NewDocumentFromReader(r)
	if err != nil {
		return Extracted{}, fmt.Errorf("parse HTML: %w", err)
	}
	base := pageURL
	if href, ok := doc.Find("base[href]").First().Attr("href"); ok {
		if u, err := pageURL.Parse(href); err == nil {
			base = u
		}
	}
	var ex Extracted
	seen := map[string]bool{}
	doc.Find("a[href]").Each(func(_ int, a *goquery.Selection) {
		u, err := base.Parse(strings.TrimSpace(a.AttrOr("href", "")))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return
		}
		u.Fragment, u.RawFragment = "", ""
		if s := u.String(); !seen[s] {
			seen[s] = true
			ex.Links = append(ex.Links, s)
		}
	})
	content := doc.Find("body")
	for _, sel := range mainContent {
		if found := doc.Find(sel); found.Length() == 1 {
			content = found
			break
		}
	}
	content.Find(chrome).Remove()
	ex.Title = strings.TrimSpace(content.Find("h1").First().Text())
	if ex.Title == "" {
		ex.Title = strings.TrimSpace(doc.Find("title").First().Text())
	}
	content.Find("h1, h2, h3, h4, h5, h6").Each(func(i int, h *goquery.Selection) {
		markHeading(h, i == 0 && goquery.NodeName(h) == "h1")
	})
	page, err := goquery.OuterHtml(content)
	if err != nil {
		return Extracted{}, fmt.Errorf("render content: %w", err)
	}
	text, err := converter.ConvertString(page, md.WithDomain(base.String()))
	if err != nil {
		return Extracted{}, fmt.Errorf("convert to Markdown: %w", err)
	}
	ex.Markdown = text
	return ex, nil
}

// markHeading rewrites a heading's content as its text followed by its id
// ("Install {#install}"), dropping the permalink symbols themes append
// (¶, #, 🔗). A heading without id becomes bold text, except the page
// title, whose anchor nobody needs.
func markHeading(h *goquery.Selection, title bool) {
	anchor := headingID(h)
	h.Find(`a[href^="#"]`).Each(func(_ int, a *goquery.Selection) {
		if !strings.ContainsFunc(a.Text(), func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
			a.Remove()
		}
	})
	text := strings.Join(strings.Fields(h.Text()), " ")
	switch {
	case text == "":
		h.Remove()
	case anchor != "":
		h.SetText(text + " {#" + anchor + "}")
	case title:
		h.SetText(text)
	default:
		h.ReplaceWithHtml("<p><strong>" + html.EscapeString(text) + "</strong></p>")
	}
}

// headingID is the id a link to the heading uses: its own, an anchor's
// inside it (<a id> or <a name>, or a permalink's href), or that of the
// <section> it opens (Sphinx).
func headingID(h *goquery.Selection) string {
	candidates := []string{h.AttrOr("id", "")}
	h.Find("a[id], a[name]").Each(func(_ int, a *goquery.Selection) {
		candidates = append(candidates, a.AttrOr("id", a.AttrOr("name", "")))
	})
	h.Find(`a[href^="#"]`).Each(func(_ int, a *goquery.Selection) {
		candidates = append(candidates, strings.TrimPrefix(a.AttrOr("href", ""), "#"))
	})
	if p := h.Parent(); goquery.NodeName(p) == "section" && p.Children().First().IsSelection(h) {
		candidates = append(candidates, p.AttrOr("id", ""))
	}
	for _, c := range candidates {
		// The chunker reads {#id} up to the first space or brace.
		if c != "" && !strings.ContainsAny(c, " \t\n{}") {
			return c
		}
	}
	return ""
}
