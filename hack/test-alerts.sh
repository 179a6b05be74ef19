#!/usr/bin/env bash
# Checks the alert rules the operator installs: `promtool check rules` on the
# rendered rule file, then `promtool test rules` on the unit tests in
# controllers/specs/alerts/testdata/*.test.yaml.
#
# The rules are rendered by the same Go code the operator's PrometheusRule
# builder calls (alerts.RuleGroupsFor), scoped to namespace "docs" and job
# "docs-chat" as the unit tests' series are, so promtool sees exactly what a
# PrometheusRule would carry. Run by `make test-alerts` (and so `make test`);
# promtool comes from `hack/tools.sh prometheus`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ALERTS=controllers/specs/alerts

PROMTOOL=${PROMTOOL:-}
if [ -z "$PROMTOOL" ]; then
  if [ -x bin/promtool ]; then PROMTOOL=$ROOT/bin/promtool
  elif command -v promtool >/dev/null 2>&1; then PROMTOOL=$(command -v promtool)
  else echo "hack/test-alerts.sh: promtool not found: run \`hack/tools.sh prometheus\` (make tools-prometheus)" >&2; exit 1
  fi
fi
"$PROMTOOL" --version 2>&1 | head -n1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# promtool resolves a test's rule_files relative to the test file, so the
# tests and the rendered rules.yaml sit side by side in the work dir.
go run ./hack/render-alert-rules -namespace docs -job docs-chat >"$work/rules.yaml"
if ! grep -q '^- name:\|^  - name:' "$work/rules.yaml"; then
  echo "hack/test-alerts.sh: rendered rules have no groups" >&2
  exit 1
fi

shopt -s nullglob
tests=("$ALERTS"/testdata/*.test.yaml)
if [ ${#tests[@]} -eq 0 ]; then
  echo "hack/test-alerts.sh: no unit tests in $ALERTS/testdata" >&2
  exit 1
fi
cp "${tests[@]}" "$work/"

echo "== promtool check rules"
"$PROMTOOL" check rules "$work/rules.yaml"

echo "== promtool test rules"
(cd "$work" && "$PROMTOOL" test rules "${tests[@]##*/}")
echo "hack/test-alerts.sh: alert rules OK (${#tests[@]} test files)"
