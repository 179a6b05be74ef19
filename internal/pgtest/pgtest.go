// Package pgtest gives tests a real, empty PostgreSQL database.
//
// With DATABASE_URL set, each call creates a uniquely named database on that
// server. Otherwise the first call starts one throwaway cluster for the whole
// test binary (initdb + postgres from the machine's PostgreSQL binaries, on a
// free port, fsync off) and every call gets a fresh database in it.
//
// Packages using it should call Main from TestMain so the cluster is shut down
// cleanly and its files removed. Without it the cluster still dies with the
// test binary (parent-death signal) and its directory is swept by the next run.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatbackend/chatbackend/internal/testutil"
)

// BinDirEnv overrides where initdb and postgres are looked up.
const BinDirEnv = "PGTEST_BIN_DIR"

var defaultBinDirs = []string{
	"/usr/lib/postgresql/17/bin",
	"/usr/lib/postgresql/16/bin",
	"/usr/lib/postgresql/15/bin",
}

var (
	once    sync.Once
	shared  *cluster
	initErr error
)

// New returns the URL of a new, empty database that is dropped when t ends.
func New(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("DATABASE_URL")
	if admin == "" {
		once.Do(func() { shared, initErr = startCluster(false, nil) })
		if initErr != nil {
			t.Fatalf("pgtest: start PostgreSQL: %v", initErr)
		}
		admin = shared.adminURL()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	name := dbName(t.Name())
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", redact(admin), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// FORCE: a pool the test forgot to close must not keep the database alive.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: DATABASE_URL is not a URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Main runs the tests, then stops the shared cluster (if one was started) and
// exits with the tests' status. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop PostgreSQL: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// dbName derives a readable, unique, valid database name from the test name.
func dbName(test string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	base := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(test), "_"), "_")
	if len(base) > 40 {
		base = base[:40]
	}
	return "t_" + base + "_" + hex.EncodeToString(b)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable url>"
	}
	return u.Redacted()
}

type cluster struct {
	dir  string
	port int
	// bin, data and cred start postgres again after a kill (Restart).
	bin, data string
	cred      *syscall.Credential
	// durable: a commit is on disk (well, in the OS) when it returns, so a
	// killed server loses nothing a client was told was stored.
	durable bool
	// tls, when set, makes the cluster accept TCP connections only over
	// TLS (NewTLSCluster).
	tls  *serverTLS
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
}

func (c *cluster) adminURL() string {
	if c.tls != nil {
		// TCP takes only TLS (and maybe a client certificate): the
		// harness itself comes in over the Unix socket.
		return fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable", url.QueryEscape(c.dir), c.port)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

func binDir() (string, error) {
	dirs := defaultBinDirs
	if d := os.Getenv(BinDirEnv); d != "" {
		dirs = []string{d}
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no initdb in %s (install PostgreSQL server binaries, set %s, or set DATABASE_URL)", strings.Join(dirs, ", "), BinDirEnv)
}

// runAs returns the credentials to run PostgreSQL with: PostgreSQL refuses to
// run as root, so as root we switch to the postgres (or nobody) account.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("running as root and neither a postgres nor a nobody account exists")
}

// spawner starts child processes from one OS thread that never exits: the
// parent-death signal fires when the *thread* that forked the child dies, so
// forking from an arbitrary goroutine's thread could kill PostgreSQL early.
var spawner = sync.OnceValue(func() chan func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		for f := range ch {
			f()
		}
	}()
	return ch
})

func startOnSpawner(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	spawner() <- func() { errc <- cmd.Start() }
	return <-errc
}

const ownerFile = "pgtest.pid"

// sweep removes clusters' directories left by test binaries that died
// without calling Main.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgtest-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(d)
		}
	}
}

func startCluster(durable bool, tls *serverTLS) (*cluster, error) {
	sweep()
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("chown %s: %w", dir, err)
		}
	}
	data := filepath.Join(dir, "data")

	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}

	c := &cluster{dir: dir, bin: bin, data: data, cred: cred, durable: durable, tls: tls}
	if tls != nil {
		if err := tls.install(dir, data, cred); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		port, err := testutil.FreePort()
		if err == nil {
			err = c.startPostgres(port)
		}
		if err == nil {
			return c, nil
		}
		// Most likely the port was taken between FreePort and bind: retry.
		if attempt == 3 {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

// startPostgres starts postgres on port and waits until it is ready.
func (c *cluster) startPostgres(port int) error {
	// Appended: a restarted server's log follows the first one's.
	logf, err := os.OpenFile(filepath.Join(c.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// Without fsync a kill of postgres alone loses nothing (the OS keeps
	// what was written); without synchronous_commit it may lose the last
	// commits, which only the durable clusters of NewCluster must not.
	syncCommit := "off"
	if c.durable {
		syncCommit = "on"
	}
	c.port = port
	c.cmd = exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.data, "-p", strconv.Itoa(port),
		"-k", c.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
		"-c", "synchronous_commit="+syncCommit, "-c", "full_page_writes=off", "-c", "max_connections=300")
	if c.tls != nil {
		c.cmd.Args = append(c.cmd.Args, c.tls.settings(c.dir)...)
	}
	c.cmd.Dir = c.dir
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// SIGQUIT is PostgreSQL's immediate shutdown: if the test binary dies
	// (timeout, kill), the cluster goes with it.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT}
	if err := startOnSpawner(c.cmd); err != nil {
		logf.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	c.done = done
	go func(cmd *exec.Cmd) {
		c.err = cmd.Wait()
		logf.Close()
		close(done)
	}(c.cmd)
	if err := c.waitReady(30 * time.Second); err != nil {
		_ = c.stopProcess()
		return err
	}
	return nil
}

func (c *cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-c.done:
			log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
			if c.err == nil { // a clean exit is still an exit before ready
				return fmt.Errorf("postgres exited with status 0: %s", log)
			}
			return fmt.Errorf("postgres exited: %w: %s", c.err, log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.adminURL())
		if err == nil {
			_ = conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the cluster down and removes its files.
func (c *cluster) stop() error {
	err := c.stopProcess()
	if rmErr := os.RemoveAll(c.dir); rmErr != nil && err == nil {
		err = rmErr
	}
	return err
}

// stopProcess asks for a fast shutdown, and kills PostgreSQL if it lingers.
func (c *cluster) stopProcess() error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
		return nil
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return errors.New("postgres did not shut down within 15s; killed")
	}
}
