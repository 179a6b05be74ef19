package gitsource

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

type authMethod = transport.AuthMethod

// Secret keys, Flux GitRepository's names, so one Secret serves both.
const (
	keyUsername    = "username"
	keyPassword    = "password"
	keyBearerToken = "bearerToken"
	keyIdentity    = "identity"
	keyKnownHosts  = "known_hosts"
)

// authFor reads the credentials for rawURL from the Secret files in dir:
// username+password or bearerToken for HTTPS, identity+known_hosts for SSH
// (the host key is always checked: known_hosts is required with identity).
// No dir is anonymous access.
func authFor(rawURL, dir string) (authMethod, error) {
	if dir == "" {
		return nil, nil
	}
	read := func(key string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, key))
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("git credentials: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if isSSH(rawURL) {
		return sshAuth(rawURL, dir, read)
	}
	user, err := read(keyUsername)
	if err != nil {
		return nil, err
	}
	pass, err := read(keyPassword)
	if err != nil {
		return nil, err
	}
	token, err := read(keyBearerToken)
	switch {
	case err != nil:
		return nil, err
	case token != "":
		return &githttp.TokenAuth{Token: token}, nil
	case user != "" || pass != "":
		return &githttp.BasicAuth{Username: user, Password: pass}, nil
	}
	return nil, fmt.Errorf("git credentials in %s: want %s and %s, or %s, for %s", dir, keyUsername, keyPassword, keyBearerToken, redact(rawURL))
}

func sshAuth(rawURL, dir string, read func(string) (string, error)) (authMethod, error) {
	identity, err := read(keyIdentity)
	if err != nil {
		return nil, err
	}
	if identity == "" {
		return nil, fmt.Errorf("git credentials in %s: an ssh URL needs %s (a private key) and %s", dir, keyIdentity, keyKnownHosts)
	}
	if _, err := os.Stat(filepath.Join(dir, keyKnownHosts)); err != nil {
		return nil, fmt.Errorf("git credentials in %s: %s is required with %s: %w", dir, keyKnownHosts, keyIdentity, err)
	}
	hostKeys, err := knownhosts.New(filepath.Join(dir, keyKnownHosts))
	if err != nil {
		return nil, fmt.Errorf("git credentials: %s: %w", keyKnownHosts, err)
	}
	user := "git"
	if ep, err := transport.NewEndpoint(rawURL); err == nil && ep.User != "" {
		user = ep.User
	}
	keys, err := gitssh.NewPublicKeys(user, []byte(identity+"\n"), "")
	if err != nil {
		return nil, fmt.Errorf("git credentials: %s: %w", keyIdentity, err)
	}
	keys.HostKeyCallback = hostKeys
	return keys, nil
}

// isSSH says whether rawURL is reached over SSH: ssh:// or scp-like
// user@host:path.
func isSSH(rawURL string) bool {
	ep, err := transport.NewEndpoint(rawURL)
	return err == nil && ep.Protocol == "ssh"
}

// redact drops the password from a URL for messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	return u.Redacted()
}
