package testutil

import (
	"fmt"
	"net"
	"testing"
)

// FreePort returns a loopback TCP port nothing listens on right now. The port
// is handed to another process, so there is a small window in which someone
// else could take it; on a test machine that is acceptable.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// FreeAddr is FreePort as "127.0.0.1:PORT", failing t when none is found.
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}
