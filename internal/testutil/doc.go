// Package testutil holds the harness pieces that several test suites need:
// free loopback ports, a goroutine-safe log buffer, and an envtest control
// plane started from the binaries hack/tools.sh caches. It is imported only
// by tests (and test harnesses under internal/ and hack/).
package testutil
