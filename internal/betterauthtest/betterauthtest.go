// Package betterauthtest runs the real BetterAuth server of hack/betterauth
// (npm better-auth with its jwt plugin and memory adapter) for tests, so the
// API server's JWT verification is tested against the tokens and JWKS that
// production clients actually get, not against a re-implementation.
//
// It needs node on PATH and hack/betterauth/node_modules (`make test-deps`).
package betterauthtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chatbackend/chatbackend/internal/testutil"
)

// startTimeout bounds how long node may take to print its readiness line;
// a cold start on a busy 2-core machine takes a couple of seconds.
const startTimeout = 60 * time.Second

// readyPrefix is the line hack/betterauth/server.mjs prints once it listens.
const readyPrefix = "betterauth listening on "

// logTailLines of BetterAuth's output go into failure messages.
const logTailLines = 200

// Server is one running BetterAuth process. Every Server has its own memory
// database, so users and keys never leak between tests.
type Server struct {
	// URL is the base URL; it is also the iss and aud of the tokens.
	URL string
	// JWKSURL is where the jwt plugin serves its public keys.
	JWKSURL string

	client *http.Client
	logs   *testutil.SyncBuffer
}

// Options tune the server for a test.
type Options struct {
	// Alg is the jwt plugin's signing algorithm (JWT_ALG): EdDSA when empty,
	// or ES256, ES512, RS256, PS256.
	Alg string
	// Expiration is the token lifetime in better-auth's notation ("15m" when
	// empty, "5s", ...).
	Expiration string
	// TrustedOrigins are browser origins allowed to call the auth routes with
	// credentials.
	TrustedOrigins []string
	// Host is the listen address: 127.0.0.1 when empty. The cluster test
	// uses the node's host address so pods reach the server.
	Host string
}

// Start runs a BetterAuth server with the defaults (EdDSA, 15 min tokens)
// and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWithOptions(t, Options{})
}

// StartWithOptions runs a BetterAuth server configured by o and stops it when
// the test ends.
func StartWithOptions(t testing.TB, o Options) *Server {
	t.Helper()
	dir, err := serverDir()
	if err != nil {
		t.Fatalf("betterauthtest: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "better-auth")); err != nil {
		t.Fatalf("betterauthtest: %s has no node_modules/better-auth: run `make test-deps` (npm ci in hack/betterauth) first", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("betterauthtest: node (>= 20) is not on PATH: %v", err)
	}

	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = dir
	env := append(os.Environ(),
		"PORT=0", // node picks a free port and reports it: no race with other tests.
		"HOST="+host,
		"BETTERAUTH_TEST_ADMIN=1",
		"BETTER_AUTH_URL=", // derived from the chosen port
		"JWT_ALG="+o.Alg,
		"JWT_EXPIRATION="+o.Expiration,
		"TRUSTED_ORIGINS="+strings.Join(o.TrustedOrigins, ","),
	)
	cmd.Env = env
	setProcAttrs(cmd)
	logs := &testutil.SyncBuffer{}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("betterauthtest: stdout pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("betterauthtest: start node: %v", err)
	}

	exited := make(chan struct{})
	ready := make(chan string, 1)
	go scanReady(stdout, logs, ready)
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	stop := func() { stopNode(cmd, exited) }
	t.Cleanup(stop)

	var url string
	select {
	case url = <-ready:
	case <-exited:
		t.Fatalf("betterauthtest: node exited before it was ready (%v); output:\n%s", cmd.ProcessState, logs.Tail(logTailLines))
	case <-time.After(startTimeout):
		stop()
		t.Fatalf("betterauthtest: no %q line within %s; output:\n%s", readyPrefix, startTimeout, logs.Tail(logTailLines))
	}

	s := &Server{
		URL:     url,
		JWKSURL: url + "/api/auth/jwks",
		client:  &http.Client{Timeout: 30 * time.Second},
		logs:    logs,
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("betterauthtest: BetterAuth output:\n%s", logs.Tail(logTailLines))
		}
	})
	return s
}

// scanReady copies node's stdout into logs and sends the URL of the ready
// line to ready (once; later lines are only logged).
func scanReady(stdout io.Reader, logs io.Writer, ready chan<- string) {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		_, _ = fmt.Fprintln(logs, line)
		if rest, ok := strings.CutPrefix(line, readyPrefix); ok {
			select {
			case ready <- strings.TrimSpace(rest):
			default:
			}
		}
	}
	// Drain whatever is left so node never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, stdout)
}

// stopNode interrupts node and kills it if it has not exited within three
// seconds; exited is closed once cmd.Wait returned.
func stopNode(cmd *exec.Cmd, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// SignUp creates a user with email and password and returns their id (the
// tokens' sub).
func (s *Server) SignUp(t testing.TB, email, name, password string) string {
	t.Helper()
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	s.postJSON(t, "/api/auth/sign-up/email", map[string]string{"email": email, "name": name, "password": password}, &out)
	if out.User.ID == "" {
		t.Fatalf("betterauthtest: sign-up of %s returned no user id", email)
	}
	return out.User.ID
}

// Token signs in with email and password and returns a JWT from the jwt
// plugin's GET /api/auth/token, exactly as a browser client obtains one.
func (s *Server) Token(t testing.TB, email, password string) string {
	t.Helper()
	cookies := s.postJSON(t, "/api/auth/sign-in/email", map[string]string{"email": email, "password": password}, nil)
	if len(cookies) == 0 {
		t.Fatalf("betterauthtest: sign-in of %s set no session cookie", email)
	}

	req, err := http.NewRequest(http.MethodGet, s.URL+"/api/auth/token", nil)
	if err != nil {
		t.Fatalf("betterauthtest: %v", err)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	var out struct {
		Token string `json:"token"`
	}
	s.do(t, req, &out)
	if strings.Count(out.Token, ".") != 2 {
		t.Fatalf("betterauthtest: GET /api/auth/token for %s returned no JWT", email)
	}
	return out.Token
}

// RotateKeys makes BetterAuth sign with a newly created key; the old key stays
// in the JWKS. It returns the new key id.
func (s *Server) RotateKeys(t testing.TB) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/__test/rotate-keys", nil)
	if err != nil {
		t.Fatalf("betterauthtest: %v", err)
	}
	var out struct {
		KID string `json:"kid"`
	}
	s.do(t, req, &out)
	if out.KID == "" {
		t.Fatalf("betterauthtest: key rotation returned no kid")
	}
	return out.KID
}

func (s *Server) postJSON(t testing.TB, path string, body any, out any) []*http.Cookie {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("betterauthtest: %v", err)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("betterauthtest: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return s.do(t, req, out)
}

// do sends req, fails the test unless it answers 200, decodes the body into
// out when out is not nil and returns the cookies the answer set (a sign-in's
// session). The response itself never leaves do, so its body is always closed.
func (s *Server) do(t testing.TB, req *http.Request, out any) []*http.Cookie {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := s.client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("betterauthtest: %s %s: %v", req.Method, req.URL.Path, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		t.Fatalf("betterauthtest: %s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("betterauthtest: %s %s answered %d: %s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("betterauthtest: %s %s: decode %q: %v", req.Method, req.URL.Path, body, err)
		}
	}
	return resp.Cookies()
}

// serverDir finds hack/betterauth: first upwards from the working directory
// (go test runs in the package directory), then from this source file.
func serverDir() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, start := range starts {
		for dir := start; ; dir = filepath.Dir(dir) {
			candidate := filepath.Join(dir, "hack", "betterauth")
			if _, err := os.Stat(filepath.Join(candidate, "server.mjs")); err == nil {
				return candidate, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", errors.New("cannot find hack/betterauth/server.mjs above the working directory")
}
