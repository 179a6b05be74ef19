package gitsource

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
)

// The Secret's files pick the method: a bearer token wins over a user and
// password; an ssh URL takes the identity and checks the host's key
// against known_hosts.
func TestAuthFromSecretFiles(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	put := func(k, v string) { g.Expect(os.WriteFile(filepath.Join(dir, k), []byte(v), 0o600)).To(Succeed()) }

	put(keyUsername, "ci")
	put(keyPassword, "pw\n")
	a, err := authFor("https://git.example.com/r.git", dir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(a).To(Equal(&githttp.BasicAuth{Username: "ci", Password: "pw"}))
	put(keyBearerToken, "tok")
	a, err = authFor("https://git.example.com/r.git", dir)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(a).To(Equal(&githttp.TokenAuth{Token: "tok"}))

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, "")
	g.Expect(err).NotTo(HaveOccurred())
	put(keyIdentity, string(pem.EncodeToMemory(block)))
	_, err = authFor("git@git.example.com:org/r.git", dir)
	g.Expect(err).To(MatchError(ContainSubstring("known_hosts is required with identity")))

	signer, err := ssh.NewSignerFromKey(priv)
	g.Expect(err).NotTo(HaveOccurred())
	put(keyKnownHosts, "git.example.com "+string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	a, err = authFor("git@git.example.com:org/r.git", dir)
	g.Expect(err).NotTo(HaveOccurred())
	keys, ok := a.(*gitssh.PublicKeys)
	g.Expect(ok).To(BeTrue())
	g.Expect(keys.User).To(Equal("git"))
	// The known host's key passes, another key does not.
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	g.Expect(keys.HostKeyCallback("git.example.com:22", addr, signer.PublicKey())).To(Succeed())
	_, other, err := ed25519.GenerateKey(rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	otherSigner, err := ssh.NewSignerFromKey(other)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(keys.HostKeyCallback("git.example.com:22", addr, otherSigner.PublicKey())).NotTo(Succeed())
}
