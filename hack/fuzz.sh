#!/usr/bin/env bash
# Runs every Go native fuzz target of the module for FUZZTIME each (default
# 10s): `make fuzz`. Targets are discovered, not listed: any
# `func FuzzXxx(f *testing.F)` in a _test.go file is run, in its package.
# `make test` (go test) already runs each target's seed corpus (f.Add and
# testdata/fuzz/FuzzXxx/) as an ordinary test; this explores beyond it, and
# a failing input is written to that testdata/fuzz directory, where it stays
# as a regression seed once committed.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}

targets=$(grep -rE --include='*_test.go' -l '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . | sort)
if [ -z "$targets" ]; then
  echo "no fuzz targets found" >&2
  exit 1
fi
failed=()
for file in $targets; do
  pkg=./$(dirname "${file#./}")
  for name in $(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(f \*testing\.F\).*/\1/p' "$file"); do
    echo "=== $name ($pkg, $fuzztime)"
    # -run '^$': only the fuzzing, the package's tests run in `make test`.
    if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
      failed+=("$name ($pkg)")
    fi
  done
done
if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzz target failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
