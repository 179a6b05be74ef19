// Package version holds the build version, set at link time by the Makefile,
// and the build tags chat-apiserver is built with.
package version

// Version is overridden with -ldflags "-X .../internal/version.Version=...".
var Version = "dev"

// APIServerTags are the build tags of chat-apiserver wherever it is shipped
// or measured (Makefile, Dockerfile, the benchmarks and e2e suites that
// build it). Each compiles out code the server never runs but would link
// and page in at start-up: nomsgpack gin's MessagePack binding and renderer
// (github.com/ugorji/go/codec, about 9 MB of the binary), grpcnotrace grpc's
// golang.org/x/net/trace, whose html/template pages would make the linker
// keep every exported method of every type. Tests run without them: the
// code they remove is never called.
const APIServerTags = "nomsgpack,grpcnotrace"
