// Command kube-api-linter is golangci-lint with the Kubernetes API linter
// (sigs.k8s.io/kube-api-linter) compiled in as a module plugin: what
// `golangci-lint custom` builds, but from the Go module proxy alone (custom
// clones golangci-lint with git, which this machine and CI cannot reach).
//
// hack/tools.sh kube-api-linter builds it; `make lint-api` runs it on api/
// with .golangci-kal.yml. Its golangci-lint version must equal
// GOLANGCI_LINT_VERSION in hack/tools.sh (the script checks).
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/golangci/golangci-lint/v2/pkg/commands"
	"github.com/golangci/golangci-lint/v2/pkg/exitcodes"

	// Registers the "kubeapilinter" module plugin with golangci-lint.
	_ "sigs.k8s.io/kube-api-linter"
)

func main() {
	info := commands.BuildInfo{Version: "unknown", Commit: "kube-api-linter", Date: "(unknown)"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.GoVersion = bi.GoVersion
		for _, dep := range bi.Deps {
			switch dep.Path {
			case "github.com/golangci/golangci-lint/v2":
				info.Version = dep.Version
			case "sigs.k8s.io/kube-api-linter":
				info.Commit = "kube-api-linter " + dep.Version
			}
		}
	}
	if err := commands.Execute(info); err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "kube-api-linter: %v\n", err)
		os.Exit(exitcodes.Failure)
	}
}
