// Package gitsource clones the docs of a git source shallowly with go-git
// (the API server's image has no git binary).
package gitsource

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/source"
)

// Checkout is a cloned source: the docs root inside it, and a Remove that
// deletes the clone.
type Checkout struct {
	// Dir is the docs root: the clone joined with the source's Path.
	Dir string
	// Commit is the hash checked out.
	Commit string
	root   string
}

// Remove deletes the clone.
func (c Checkout) Remove() error { return os.RemoveAll(c.root) }

// Clone fetches the one commit that src.Ref names (a branch, a tag, a full
// commit hash, or the remote's HEAD when empty) with depth 1 into a new
// directory under the system temporary directory ($TMPDIR: the operator
// gives the Job an emptyDir with a size limit there). The caller removes it.
func Clone(ctx context.Context, src source.Git) (Checkout, error) {
	// Rooted at "/", the cleaned path cannot climb out of the clone.
	sub := strings.TrimPrefix(path.Clean("/"+src.Path), "/")
	auth, err := authFor(src.URL, src.AuthDir)
	if err != nil {
		return Checkout{}, err
	}
	root, err := os.MkdirTemp("", "ingest-git-")
	if err != nil {
		return Checkout{}, fmt.Errorf("git: clone directory: %w", err)
	}
	co := Checkout{root: root, Dir: filepath.Join(root, filepath.FromSlash(sub))}
	var hash plumbing.Hash
	if plumbing.IsHash(src.Ref) {
		hash, err = fetchCommit(ctx, root, src.URL, plumbing.NewHash(src.Ref), auth)
	} else {
		hash, err = cloneRef(ctx, root, src, auth)
	}
	if err != nil {
		_ = co.Remove()
		return Checkout{}, fmt.Errorf("git: clone %s: %w", redact(src.URL), err)
	}
	co.Commit = hash.String()
	// Through an os.Root, so that a symlink cannot lead out of the clone.
	info, err := statInside(root, sub)
	if err != nil || !info.IsDir() {
		_ = co.Remove()
		return Checkout{}, fmt.Errorf("git: %s at %.12s has no folder %q", redact(src.URL), co.Commit, src.Path)
	}
	return co, nil
}

func statInside(dir, sub string) (os.FileInfo, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Stat(cmp.Or(sub, "."))
}

// cloneRef clones a branch or tag (or HEAD), trying the name as a branch
// first and then as a tag, as `git clone --branch` does.
func cloneRef(ctx context.Context, dir string, src source.Git, auth authMethod) (plumbing.Hash, error) {
	names := []plumbing.ReferenceName{plumbing.HEAD}
	switch {
	case strings.HasPrefix(src.Ref, "refs/"):
		names = []plumbing.ReferenceName{plumbing.ReferenceName(src.Ref)}
	case src.Ref != "":
		names = []plumbing.ReferenceName{plumbing.NewBranchReferenceName(src.Ref), plumbing.NewTagReferenceName(src.Ref)}
	}
	var err error
	for _, name := range names {
		var repo *git.Repository
		repo, err = git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
			URL: src.URL, Auth: auth, ReferenceName: name, SingleBranch: true, Depth: 1, Tags: git.NoTags,
		})
		if err == nil {
			head, herr := repo.Head()
			if herr != nil {
				return plumbing.ZeroHash, fmt.Errorf("read HEAD: %w", herr)
			}
			return head.Hash(), nil
		}
		if !isMissingRef(err) {
			return plumbing.ZeroHash, err
		}
		// A failed clone leaves a partial repository behind.
		if rerr := emptyDir(dir); rerr != nil {
			return plumbing.ZeroHash, rerr
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("no branch or tag %q: %w", src.Ref, err)
}

func isMissingRef(err error) bool {
	var noMatch git.NoMatchingRefSpecError
	return errors.As(err, &noMatch) || errors.Is(err, plumbing.ErrReferenceNotFound)
}

// fetchCommit fetches one commit by hash, which the server must allow
// (uploadpack.allowReachableSHA1InWant; GitHub, GitLab and Gitea do).
func fetchCommit(ctx context.Context, dir, url string, hash plumbing.Hash, auth authMethod) (plumbing.Hash, error) {
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("init: %w", err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{url}}); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("add remote: %w", err)
	}
	ref := plumbing.NewBranchReferenceName("ingest")
	err = repo.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{config.RefSpec(hash.String() + ":" + ref.String())},
		Auth:     auth, Depth: 1, Tags: git.NoTags,
	})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("fetch commit %s: %w", hash, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("worktree: %w", err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: hash}); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("check out %s: %w", hash, err)
	}
	return hash, nil
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("clean up failed clone: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("clean up failed clone: %w", err)
		}
	}
	return nil
}
