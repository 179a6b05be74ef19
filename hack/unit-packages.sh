#!/usr/bin/env bash
# Prints the packages whose tests need nothing outside the Go toolchain: the
# list `make test-unit` runs.
#
# The rule: a package is a unit package when its test binary links none of
# the harnesses that start an outside part:
#   internal/pgtest                      PostgreSQL server binaries
#   internal/nodetest                    node + hack/betterauth or
#                                        hack/embedserver (linked through
#                                        internal/betterauthtest, embedtest)
#   controller-runtime/pkg/envtest       kube-apiserver + etcd
#                                        (also linked through internal/testutil)
# and it is not under hack/, whose tests check the install artifacts with the
# real tools (helm for the chart and kustomize tests).
# So a new test is classified by what it imports and where it lives, with
# nothing to keep in sync by hand. Packages without tests are left out.
set -euo pipefail
cd "$(dirname "$0")/.."

harness='github\.com/chatbackend/chatbackend/internal/(pgtest|nodetest)|sigs\.k8s\.io/controller-runtime/pkg/envtest'

# One line per test binary: "<pkg>.test <dep> <dep> ...". Deps of a test
# binary include the package under test and every transitive import.
go list -test -f '{{if eq .Name "main"}}{{.ImportPath}}{{range .Deps}} {{.}}{{end}}{{end}}' ./... |
  grep -E '^[^ ]+\.test ' |
  grep -Ev " ($harness)( |$)" |
  awk '{ sub(/\.test$/, "", $1); print $1 }' |
  grep -v '^github\.com/chatbackend/chatbackend/hack/'
