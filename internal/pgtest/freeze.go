package pgtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cluster is a PostgreSQL cluster of one test's own, for tests that do to
// the server what they must not do to the shared one: freeze it.
type Cluster struct {
	c *cluster
}

// NewCluster starts a throwaway cluster that is stopped and removed when t
// ends. It ignores DATABASE_URL: freezing needs the server's processes. Its
// commits are synchronous, so killing it loses no acknowledged write.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := startCluster(true, nil)
	if err != nil {
		t.Fatalf("pgtest: start PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("pgtest: stop PostgreSQL: %v", err)
		}
	})
	return &Cluster{c: c}
}

// URL is the cluster's postgres database, as its superuser.
func (c *Cluster) URL() string { return c.c.adminURL() }

// Freeze stops every process of the cluster (SIGSTOP): the server still
// accepts TCP connections (the kernel does) but answers nothing, like a
// hung database or one behind a network black hole. The postmaster is
// stopped first, so it forks no backend that would escape. The cluster is
// thawed when t ends, whatever happens in between.
func (c *Cluster) Freeze(t testing.TB) {
	t.Helper()
	t.Cleanup(c.Thaw)
	pid := c.c.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("pgtest: freeze postmaster: %v", err)
	}
	for _, child := range children(pid) {
		_ = syscall.Kill(child, syscall.SIGSTOP) // it may have just exited
	}
}

// Thaw resumes the cluster's processes (SIGCONT); the postmaster last, once
// its backends run again.
func (c *Cluster) Thaw() {
	pid := c.c.cmd.Process.Pid
	for _, child := range children(pid) {
		_ = syscall.Kill(child, syscall.SIGCONT)
	}
	_ = syscall.Kill(pid, syscall.SIGCONT)
}

// children lists the processes whose parent is pid, from /proc.
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and parens.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		if child, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
			out = append(out, child)
		}
	}
	return out
}

// Kill kills every process of the cluster (SIGKILL), like the OOM killer
// or a node lost: no shutdown, every connection reset. The data directory
// stays; Restart brings the cluster back on the same port.
func (c *Cluster) Kill(t testing.TB) {
	t.Helper()
	pid := c.c.cmd.Process.Pid
	// Listed first: once the postmaster is gone its children are re-parented.
	kids := children(pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("pgtest: kill postmaster: %v", err)
	}
	for _, child := range kids {
		_ = syscall.Kill(child, syscall.SIGKILL)
	}
	select {
	case <-c.c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("pgtest: the killed postmaster did not exit within 10s")
	}
	// A backend still attached to the old shared memory would make the
	// restarted postmaster refuse to start.
	deadline := time.Now().Add(10 * time.Second)
	for _, child := range kids {
		for syscall.Kill(child, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("pgtest: backend %d outlived its killed postmaster", child)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Restart starts the killed cluster again on its port and data directory
// (PostgreSQL runs crash recovery) and waits until it accepts connections.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	if err := c.c.startPostgres(c.c.port); err != nil {
		t.Fatalf("pgtest: restart PostgreSQL on port %d: %v", c.c.port, err)
	}
}
