// Package gittest serves real git repositories over the smart HTTP
// protocol on 127.0.0.1, with the system's `git http-backend` (CGI), for
// tests of code that clones.
package gittest

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Repo is a working repository whose commits are pushed to a bare one that
// Server serves.
type Repo struct {
	t    *testing.T
	work string
	bare string
}

// New creates an empty repository; it skips the test when git is missing.
func New(t *testing.T) *Repo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	r := &Repo{t: t, work: filepath.Join(dir, "work"), bare: filepath.Join(dir, "repo.git")}
	r.git(dir, "init", "--quiet", "--bare", "--initial-branch=main", r.bare)
	// Clients may fetch a commit by hash, as GitHub allows.
	r.git(r.bare, "config", "uploadpack.allowReachableSHA1InWant", "true")
	r.git(dir, "init", "--quiet", "--initial-branch=main", r.work)
	r.git(r.work, "remote", "add", "origin", r.bare)
	return r
}

func (r *Repo) git(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com", "GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files (path → content; "" deletes the file, a value
// "rename:OLD" moves OLD there), commits them on branch main, pushes, and
// returns the commit's hash.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	for p, content := range files {
		full := filepath.Join(r.work, filepath.FromSlash(p))
		switch {
		case content == "":
			r.git(r.work, "rm", "--quiet", p)
			continue
		case strings.HasPrefix(content, "rename:"):
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				r.t.Fatal(err)
			}
			r.git(r.work, "mv", strings.TrimPrefix(content, "rename:"), p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		r.git(r.work, "add", p)
	}
	r.git(r.work, "commit", "--quiet", "-m", msg)
	r.git(r.work, "push", "--quiet", "origin", "main")
	return r.git(r.work, "rev-parse", "HEAD")
}

// Tag tags the last commit and pushes the tag.
func (r *Repo) Tag(name string) {
	r.t.Helper()
	r.git(r.work, "tag", name)
	r.git(r.work, "push", "--quiet", "origin", name)
}

// Serve serves the repository at URL()/repo.git until the test ends. With
// a user, requests need HTTP basic auth with user and password.
func (r *Repo) Serve(user, password string) string {
	r.t.Helper()
	backend, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		r.t.Fatalf("git --exec-path: %v", err)
	}
	h := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(backend)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(r.bare), "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
	}
	var handler http.Handler = h
	if user != "" {
		handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if u, p, ok := req.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, req)
		})
	}
	srv := httptest.NewServer(handler)
	r.t.Cleanup(srv.Close)
	return srv.URL + "/repo.git"
}
