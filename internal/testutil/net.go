package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FreePort returns a loopback TCP port nothing listens on right now. The port
// is handed to another process, so there is a window in which someone else
// could take it.
//
// Why not the port the kernel picks for 127.0.0.1:0: that comes from the
// ephemeral range, the same range every outgoing connection's source port
// comes from. Under `make test` dozens of test binaries connect to their
// PostgreSQL, BetterAuth and to each other at once, and one of those
// connections taking the port between FreePort and the server's listen
// failed a serve start with "address already in use" (CI, TestServe).
// Ports below the ephemeral range are never handed out by the kernel, so
// only another FreePort's random pick could collide. When the machine
// leaves too few ports below its range, it falls back to the kernel's pick.
func FreePort() (int, error) {
	lo := ephemeralLow()
	const first = 20000
	if lo-first >= 1000 {
		for range 64 {
			p := first + rand.IntN(lo-first)
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				continue // taken: try another
			}
			if err := l.Close(); err != nil {
				return 0, fmt.Errorf("find a free port: %w", err)
			}
			return p, nil
		}
	}
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

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default, 32768, where it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo <= 0 {
		return 32768
	}
	return lo
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
