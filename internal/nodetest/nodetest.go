// Package nodetest runs one of the node programs under hack/ (the real
// BetterAuth of hack/betterauth, the real sentence encoder of
// hack/embedserver) for a test: it starts node on a free port, waits a
// bounded time for the program's readiness line, and stops it when the test
// ends (or, on Linux, when the test binary dies).
//
// The programs' npm dependencies come from `make test-deps-apiserver`.
package nodetest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chatbackend/chatbackend/internal/testutil"
)

// logTailLines of the program's output go into failure messages.
const logTailLines = 200

// Program is one node program of hack/.
type Program struct {
	// Name is its directory under hack/ ("betterauth").
	Name string
	// Script is the file node runs, in that directory ("server.mjs").
	Script string
	// Module is a package of its node_modules whose absence means `npm ci`
	// has not run there.
	Module string
	// ReadyPrefix starts the line the program prints once it listens; the
	// rest of that line is its base URL.
	ReadyPrefix string
	// StartTimeout bounds the wait for that line.
	StartTimeout time.Duration
}

// Process is a running program.
type Process struct {
	// URL is the base URL from the ready line.
	URL string
}

// Start runs p with env added to the test's environment (PORT=0 and
// HOST=127.0.0.1 come first, so env may override them) and stops it when
// the test ends; on failure its output is logged.
func Start(t testing.TB, p Program, env ...string) *Process {
	t.Helper()
	dir, err := Dir(p.Name, p.Script)
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", p.Module)); err != nil {
		t.Fatalf("nodetest: %s has no node_modules/%s: run `make test-deps` (npm ci in hack/%s) first", dir, p.Module, p.Name)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("nodetest: node (>= 20) is not on PATH: %v", err)
	}
	cmd := exec.Command(node, p.Script)
	cmd.Dir = dir
	// PORT=0: node picks a free port and reports it, no race with other tests.
	cmd.Env = append(append(os.Environ(), "PORT=0", "HOST=127.0.0.1"), env...)
	setProcAttrs(cmd)
	// Wait also waits for stderr's copy; a grandchild holding the pipe open
	// must not hold the test's clean-up with it.
	cmd.WaitDelay = 5 * time.Second
	logs := &testutil.SyncBuffer{}
	cmd.Stderr = logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("nodetest: stdout pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nodetest: start node %s: %v", p.Script, err)
	}

	exited := make(chan struct{})
	ready := make(chan string, 1)
	go scanReady(stdout, logs, p.ReadyPrefix, ready)
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
		t.Fatalf("nodetest: hack/%s exited before it was ready (%v); output:\n%s", p.Name, cmd.ProcessState, logs.Tail(logTailLines))
	case <-time.After(p.StartTimeout):
		stop()
		t.Fatalf("nodetest: hack/%s printed no %q line within %s; output:\n%s", p.Name, p.ReadyPrefix, p.StartTimeout, logs.Tail(logTailLines))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nodetest: hack/%s output:\n%s", p.Name, logs.Tail(logTailLines))
		}
	})
	return &Process{URL: url}
}

// scanReady copies node's stdout into logs and sends the rest of the first
// line that starts with prefix to ready (later lines are only logged).
func scanReady(stdout io.Reader, logs io.Writer, prefix string, ready chan<- string) {
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		_, _ = fmt.Fprintln(logs, line)
		if rest, ok := strings.CutPrefix(line, prefix); ok {
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

// Dir finds hack/name (the directory that holds script): first upwards from
// the working directory (go test runs in the package directory), then from
// this source file.
func Dir(name, script string) (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, start := range starts {
		for dir := start; ; dir = filepath.Dir(dir) {
			candidate := filepath.Join(dir, "hack", name)
			if _, err := os.Stat(filepath.Join(candidate, script)); err == nil {
				return candidate, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", errors.New("cannot find hack/" + name + "/" + script + " above the working directory")
}
