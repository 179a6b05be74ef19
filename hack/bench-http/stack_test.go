//go:build bench

package benchhttp

// The processes the benchmarks drive: a real PostgreSQL (internal/pgtest),
// a JWKS this harness controls, the built chat-apiserver and the floor,
// each its own process so that its CPU time and memory can be read from
// /proc.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/chatbackend/chatbackend/apiserver/store/migrations"
	"github.com/chatbackend/chatbackend/internal/pgtest"
	"github.com/chatbackend/chatbackend/internal/testutil"
	"github.com/chatbackend/chatbackend/internal/version"
)

// TestMain stops the PostgreSQL cluster when the run ends.
func TestMain(m *testing.M) { pgtest.Main(m) }

const kid = "bench-key"

// issuer signs the tokens and serves their JWKS.
type issuer struct {
	url   string // also iss and aud
	key   *rsa.PrivateKey
	wrong *rsa.PrivateKey // signs the rejected tokens under the same kid
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.PublicKey
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(srv.Close)
	return &issuer{url: srv.URL, key: key, wrong: wrong}
}

func (i *issuer) jwksURL() string { return i.url + "/api/auth/jwks" }

// token is user's RS256 token, valid for an hour, signed by key.
func (i *issuer) token(t *testing.T, user string, key *rsa.PrivateKey) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"sub": user, "email": user + "@example.com", "name": "Bench " + user, "emailVerified": true,
		"iss": i.url, "aud": i.url, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// userID is the id of seeded user n.
func userID(n int) string { return fmt.Sprintf("bench-user-%04d", n) }

// seed is what the database holds for the scenarios.
type seed struct {
	// latest[n] is user n's most recently updated conversation.
	latest []string
	// long is user 0's conversation of depth messages.
	long string
}

// seedDatabase migrates dbURL and fills it: users × perUser conversations,
// and one conversation of user 0 with depth messages.
func seedDatabase(t *testing.T, dbURL string, users, perUser, depth int) seed {
	t.Helper()
	ctx := context.Background()
	if _, err := migrations.Migrate(ctx, dbURL, nil, nil); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`INSERT INTO users (id, email, name)
		 SELECT format('bench-user-%s', lpad(n::text, 4, '0')), format('bench-user-%s@example.com', lpad(n::text, 4, '0')),
		        format('Bench bench-user-%s', lpad(n::text, 4, '0'))
		 FROM generate_series(0, $1 - 1) n`,
		`INSERT INTO conversations (user_id, title, created_at, updated_at)
		 SELECT format('bench-user-%s', lpad(n::text, 4, '0')), format('conversation %s', c),
		        now() - make_interval(mins => c), now() - make_interval(mins => c)
		 FROM generate_series(0, $1 - 1) n, generate_series(1, $2) c`,
	} {
		args := []any{users}
		if strings.Contains(q, "$2") {
			args = append(args, perUser)
		}
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	var s seed
	rows, err := conn.Query(ctx, `SELECT DISTINCT ON (user_id) id::text FROM conversations
		ORDER BY user_id, updated_at DESC, id DESC`)
	if err != nil {
		t.Fatal(err)
	}
	if s.latest, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	// The long history: the oldest conversation of user 0, so it does not
	// change which conversation the other scenarios use.
	if err := conn.QueryRow(ctx, `INSERT INTO conversations (user_id, title, created_at, updated_at)
		VALUES ($1, 'long history', now() - interval '1 year', now() - interval '1 year') RETURNING id::text`,
		userID(0)).Scan(&s.long); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO messages (conversation_id, user_id, role, content, created_at)
		SELECT $1::uuid, $2, CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END,
		       'message ' || i || ' of a long history, about the length of a short question or answer', 
		       now() - interval '1 year' + make_interval(secs => i)
		FROM generate_series(1, $3) i`, s.long, userID(0), depth); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	return s
}

// cursorAt is the keyset cursor (apiserver/store's format: base64 of
// {"t","i"}) of the message at position n of conversation id, i.e. of the
// page that starts after it.
func cursorAt(t *testing.T, dbURL, id string, n int) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var at time.Time
	var mid string
	if err := conn.QueryRow(ctx, `SELECT created_at, id::text FROM messages WHERE conversation_id = $1::uuid
		ORDER BY created_at, id OFFSET $2 LIMIT 1`, id, n-1).Scan(&at, &mid); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"t": at.UTC(), "i": mid})
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// build compiles pkg (relative to the module root) into dir, with the
// build tags chat-apiserver ships with (they change nothing in the floor).
func build(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-tags", version.APIServerTags, "-o", out, "./"+pkg)
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// proc is a server process under measurement.
type proc struct {
	name string
	base string // http://host:port
	cmd  *exec.Cmd
}

// start runs bin with env (and the harness's environment) and waits until
// GET ready answers 200. Its stderr goes to log, in the -profile directory
// when one is given (kept with the profiles, gctrace included).
func start(t *testing.T, name, bin string, args []string, env map[string]string, base, ready, log string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			t.Fatal(err)
		}
		log = filepath.Join(*profile, filepath.Base(log))
	}
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	cmd.Stderr = f
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	if base == "" { // the floor prints its address
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			t.Fatalf("%s: no address: %v", name, err)
		}
		base = "http://" + strings.TrimSpace(line)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(log)
			t.Fatalf("%s not ready within 60s: %v\n%s", name, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &proc{name: name, base: base, cmd: cmd}
}

// cpu is the process's user + system CPU time so far.
func (p *proc) cpu(t *testing.T) time.Duration {
	t.Helper()
	f, ok := statFields(p.cmd.Process.Pid)
	if !ok {
		t.Fatalf("%s: no /proc/PID/stat", p.name)
	}
	// utime and stime: fields 14 and 15 of stat.
	return ticks(f[11], f[12])
}

// rss is the process's resident memory, in bytes.
func (p *proc) rss(t *testing.T) int64 { return p.status(t, "VmRSS") }

// status reads a size field of /proc/PID/status, in bytes.
func (p *proc) status(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/PID/status", field)
	return 0
}

// binaryPages is the resident part of the process's mappings of its own
// executable, by permissions: r-xp is code, r--p read-only data (the
// function tables, type data, constants), rw-p initialised data. They are
// file-backed page cache: GOGC and GOMEMLIMIT do not touch them.
func (p *proc) binaryPages(t *testing.T) map[string]int64 {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]int64{}
	perms := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 6 && strings.Contains(f[0], "-") && len(f[1]) == 4:
			// A mapping's header: range perms offset dev inode path.
			perms = ""
			if f[5] == exe {
				perms = f[1]
			}
		case perms != "" && len(f) == 3 && f[0] == "Rss:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			pages[perms] += kb << 10
		}
	}
	return pages
}

// freeAddr is a loopback address nobody listens on.
func freeAddr(t *testing.T) string { return testutil.FreeAddr(t) }

// pids lists the machine's processes.
func pids(t *testing.T) []int {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, d := range dirs {
		if pid, err := strconv.Atoi(d.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// pgProc is the PostgreSQL cluster serving a database URL, for its CPU.
type pgProc struct{ pid int }

// postmaster finds the postmaster listening on dbURL's port.
func postmaster(t *testing.T, dbURL string) pgProc {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	want := "\x00-p\x00" + u.Port() + "\x00"
	for _, pid := range pids(t) {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmdline), want) && strings.HasSuffix(strings.SplitN(string(cmdline), "\x00", 2)[0], "postgres") {
			return pgProc{pid: pid}
		}
	}
	t.Fatalf("no postmaster on port %s", u.Port())
	return pgProc{}
}

// cpu is the cluster's CPU time so far: the postmaster's, its exited
// backends' (counted into the postmaster's children times) and its live
// backends'.
func (p pgProc) cpu(t *testing.T) time.Duration {
	t.Helper()
	total := time.Duration(0)
	for _, pid := range pids(t) {
		f, ok := statFields(pid)
		if !ok {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		switch {
		case pid == p.pid:
			total += ticks(f[11], f[12], f[13], f[14])
		case ppid == p.pid:
			total += ticks(f[11], f[12])
		}
	}
	return total
}

// statFields is /proc/PID/stat after the command's name: state, ppid, ...
func statFields(pid int) ([]string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, false
	}
	f := strings.Fields(string(b[i+2:]))
	return f, len(f) > 14
}

// ticks adds /proc stat CPU fields, counted in USER_HZ (100 on Linux).
func ticks(fields ...string) time.Duration {
	var n int64
	for _, f := range fields {
		v, _ := strconv.ParseInt(f, 10, 64)
		n += v
	}
	return time.Duration(n) * 10 * time.Millisecond
}

// selfCPU is this process's user + system CPU time so far.
func selfCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
