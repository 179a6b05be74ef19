package pgtest_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatbackend/chatbackend/internal/pgtest"
)

const childEnv = "PGTEST_ORPHAN_CHILD"

// A test binary that dies without cleaning up (killed by a timeout or
// SIGKILL) must not leave its PostgreSQL running.
func TestClusterDiesWithTheTestBinary(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("no throwaway cluster when DATABASE_URL is set")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "POSTMASTER "); ok {
			pid, _ = strconv.Atoi(rest)
			break
		}
	}
	if pid == 0 {
		_ = cmd.Process.Kill()
		t.Fatalf("child did not report its postmaster: %v", cmd.Wait())
	}
	if !alive(pid) {
		t.Fatalf("postmaster %d not running while the child lives", pid)
	}
	_ = cmd.Process.Kill() // SIGKILL: no deferred cleanup, no TestMain epilogue
	_ = cmd.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postmaster %d still running 15s after its test binary was killed", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports a live (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) == syscall.ESRCH {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// TestOrphanChild is the child of TestClusterDiesWithTheTestBinary: it starts
// a cluster, reports the postmaster's pid and waits to be killed.
func TestOrphanChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("helper process for TestClusterDiesWithTheTestBinary")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// The checkpointer's parent is the postmaster.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	ppid := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))[1]
	fmt.Printf("POSTMASTER %s\n", ppid)
	time.Sleep(time.Minute)
}
