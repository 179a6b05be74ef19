package ingest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/chatbackend/chatbackend/apiserver/rag/chunk"
)

// Loaded is what a source's Load found.
type Loaded struct {
	Chunks []chunk.Chunk
	// Pages is how many pages were read (drafts and failed pages excluded).
	Pages int
	// Skipped counts chunks left out (Warnings say why).
	Skipped  int
	Warnings []PageError
	// Errors are pages left out that may still be in the docs: their
	// stored chunks are kept. Each Path is a page's chunk.Chunk.DocPath,
	// or a folder of such pages (one that could not be read), which is
	// what tells their chunks from those of removed pages.
	Errors []PageError
	// Hidden are pages left out whose stored chunks cannot be told from
	// those of removed pages: while there is one, no chunk of the source
	// is removed.
	Hidden []PageError
	// Missed are pages left out that do not hide anything (gone, or kept
	// from their last good copy).
	Missed []PageError
}

// Docs is the source of a Docusaurus docs folder (see Load).
func Docs(name, dir string, opt chunk.Options) Source {
	return Source{Name: name, Load: func(context.Context) (Loaded, error) { return Load(dir, opt) }}
}

// Load walks dir and returns the chunks of its Markdown and MDX pages. Like
// Docusaurus it skips files and folders starting with "_" or ".",
// node_modules, and draft pages. Files are read through an os.Root, so a
// symlink cannot lead the walk outside dir. A page that cannot be read or
// parsed is recorded in Errors and the walk goes on.
func Load(dir string, opt chunk.Options) (Loaded, error) {
	if opt.SiteURL == "" {
		return Loaded{}, errors.New("ingest: the site URL is required (--site-url)")
	}
	info, err := os.Stat(dir)
	if err != nil {
		return Loaded{}, fmt.Errorf("ingest: docs folder: %w", err)
	}
	if !info.IsDir() {
		return Loaded{}, fmt.Errorf("ingest: docs folder %s is not a directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Loaded{}, fmt.Errorf("ingest: docs folder: %w", err)
	}
	defer root.Close()
	l := loader{fsys: root.FS(), pageSet: newPages(opt)}
	if err := fs.WalkDir(l.fsys, ".", l.visit); err != nil {
		return Loaded{}, fmt.Errorf("ingest: walk %s: %w", dir, err)
	}
	if l.Pages == 0 {
		// Refuse rather than delete every stored chunk because of a wrong path.
		return Loaded{}, fmt.Errorf("ingest: no readable Markdown or MDX pages under %s (%d could not be read): %w",
			dir, len(l.Errors), errors.Join(pageErrors(l.Errors)...))
	}
	return l.Loaded, nil
}

func pageErrors(es []PageError) []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// loader collects the chunks of one walk of the docs folder.
type loader struct {
	fsys     fs.FS
	*pageSet // its opt is the chunk options
}

// visit is the fs.WalkDirFunc of Load; p is slash-separated, clean and
// relative to the docs folder, as chunk.Parse makes a page's DocPath, so an
// Errors entry names the chunks its page (or folder) keeps.
func (l *loader) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		if p == "." {
			return err
		}
		l.Errors = append(l.Errors, PageError{Path: p, Reason: err.Error()})
		if d != nil && d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}
	name := d.Name()
	if p != "." && (strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") || name == "node_modules") {
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	}
	ext := strings.ToLower(path.Ext(name))
	if d.IsDir() || (ext != ".md" && ext != ".mdx") {
		return nil
	}
	src, err := fs.ReadFile(l.fsys, p)
	if err != nil {
		l.Errors = append(l.Errors, PageError{Path: p, Reason: err.Error()})
		return nil
	}
	page, err := chunk.Parse(p, src, l.opt)
	if err != nil {
		l.Errors = append(l.Errors, PageError{Path: p, Reason: strings.TrimPrefix(err.Error(), p+": ")})
		return nil
	}
	if !page.Draft {
		l.add(page)
	}
	return nil
}

// pageSet chunks parsed pages into a Loaded: the folder walk's and the
// crawl's pages alike.
type pageSet struct {
	opt chunk.Options
	// seen maps a chunk ID to the page that yielded it.
	seen map[string]string
	Loaded
}

func newPages(opt chunk.Options) *pageSet {
	return &pageSet{opt: opt, seen: map[string]string{}}
}

// add chunks a page and collects its chunks.
func (l *pageSet) add(page chunk.Page) {
	l.Pages++
	for _, c := range chunk.Split(page, l.opt) {
		if other, dup := l.seen[c.ID]; dup {
			// A heading id used twice ({#same} on two headings): the second
			// section cannot be linked to; its text is left out.
			l.Skipped++
			l.Warnings = append(l.Warnings, PageError{Path: c.DocPath,
				Reason: fmt.Sprintf("heading id %q appears twice (also in %s): the later section is left out", c.Anchor, other)})
			continue
		}
		l.seen[c.ID] = c.DocPath
		l.Chunks = append(l.Chunks, c)
	}
}
