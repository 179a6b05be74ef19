// Package source is the contract between the operator and
// `chat-apiserver ingest`: where a ChatBackend's docs live.
//
// The operator renders spec.ingest.sources of a ChatBackend as a JSON
// array of Spec in the INGEST_SOURCES variable (envvar.IngestSources) of
// the ingest Job, and mounts each source's credentials Secret, if any, at
// AuthDir. `chat-apiserver ingest` reads the same array (or builds a
// single Spec from its --git or --site flags), so the two sides cannot
// drift: both encode and decode these types, and a contract test in
// controllers/specs decodes what the operator renders.
//
// It imports only the standard library, so both sides can depend on it.
package source

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Spec is one source of docs. Exactly one of Git and Site is set.
type Spec struct {
	// Name identifies the source's chunks in the index: a run removes
	// the chunks of sources no longer listed, and one source's pages
	// never replace another's.
	Name string `json:"name"`
	Git  *Git   `json:"git,omitempty"`
	Site *Site  `json:"site,omitempty"`
}

// Git is a docs folder in a git repository, cloned shallowly.
type Git struct {
	// URL is an https:// or ssh:// (or scp-like git@host:path) URL.
	URL string `json:"url"`
	// Ref is a branch, tag or full commit hash; empty is the remote's HEAD.
	Ref string `json:"ref,omitempty"`
	// Path is the docs root inside the repository; empty is its root.
	Path string `json:"path,omitempty"`
	// SiteURL is the public URL of the published site, with its baseUrl,
	// and RouteBase the docs plugin's routeBasePath: together they make
	// citation links.
	SiteURL   string `json:"siteURL"`
	RouteBase string `json:"routeBase,omitempty"`
	// AuthDir, when set, is a directory holding the files of a Secret
	// with Flux's GitRepository key names: `username` and `password` (or
	// `bearerToken`) for HTTPS; `identity` (a private key) and
	// `known_hosts` for SSH.
	AuthDir string `json:"authDir,omitempty"`
}

// Site is a published docs site, crawled over HTTP.
type Site struct {
	// URL is the site's base URL or its sitemap.xml.
	URL string `json:"url"`
	// MaxPages caps the pages fetched in one run (0: the crawler's default).
	MaxPages int `json:"maxPages,omitempty"`
}

// Validate says what is wrong with a Spec, if anything.
func (s Spec) Validate() error {
	if s.Name == "" {
		return errors.New("name: required")
	}
	switch {
	case (s.Git == nil) == (s.Site == nil):
		return fmt.Errorf("source %q: set exactly one of git and site", s.Name)
	case s.Git != nil && (s.Git.URL == "" || s.Git.SiteURL == ""):
		return fmt.Errorf("source %q: git.url and git.siteURL are required", s.Name)
	case s.Site != nil && s.Site.URL == "":
		return fmt.Errorf("source %q: site.url is required", s.Name)
	}
	return nil
}

// Parse decodes and validates INGEST_SOURCES: names must be unique.
func Parse(data string) ([]Spec, error) {
	var specs []Spec
	if err := json.Unmarshal([]byte(data), &specs); err != nil {
		return nil, fmt.Errorf("decode sources: %w", err)
	}
	seen := map[string]bool{}
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			return nil, err
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("source %q: listed twice", s.Name)
		}
		seen[s.Name] = true
	}
	return specs, nil
}
