#!/usr/bin/env bash
# Browser end-to-end test (issues 6, 14): starts a throwaway PostgreSQL, the real
# BetterAuth server of hack/betterauth and bin/chat-apiserver (migrate, ingest
# of hack/e2e/docs with the offline embedder, serve) on loopback, each on its
# own port, builds hack/e2e/docs into a Docusaurus site with the chat widget's
# plugin (cached), then runs hack/e2e/browser/e2e.test.mjs with `node --test`:
# headless Chromium reads the site on a fourth origin, signs in on its BetterAuth
# page and chats through the widget served by the API; the same site on a fifth
# origin is refused by CORS.
#
# Run through `make e2e` (builds bin/chat-apiserver first). It installs what it
# needs itself: Chromium (hack/tools.sh chromium) and the npm packages of
# hack/betterauth, hack/e2e/browser and its site/. Screenshots, the browser console and
# the servers' logs end up in hack/e2e/artifacts/.
#
# Everything it starts is stopped on exit, failure or Ctrl-C; every wait is
# bounded (E2E_TIMEOUT seconds for the browser test, default 300).
#
# Environment: CHAT_APISERVER (default bin/chat-apiserver), CHROMIUM (default
# /usr/bin/chromium), PG_BIN (default: newest /usr/lib/postgresql/*/bin).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
E2E="$ROOT/hack/e2e"
APISERVER=${CHAT_APISERVER:-$ROOT/bin/chat-apiserver}
ARTIFACTS="$E2E/artifacts"
E2E_TIMEOUT=${E2E_TIMEOUT:-300}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

SAY_PREFIX=e2e:
# shellcheck source=SCRIPTDIR/../lib/local-stack.sh
. "$ROOT/hack/lib/local-stack.sh"

# --- what the test needs, installed when missing ---------------------------------
[ -x "$APISERVER" ] || die "$APISERVER is missing: run 'make e2e' (or 'make build')"
"$APISERVER" ingest --help >/dev/null 2>&1 || die "$APISERVER has no ingest command: rebuild it ('make build')"
stack_require
[ -x "$CHROMIUM" ] || "$ROOT/hack/tools.sh" chromium
[ -x "$CHROMIUM" ] || die "no Chromium at $CHROMIUM (hack/tools.sh chromium installs Debian's)"
npm_ci() { # $1: directory with package-lock.json; installs when node_modules is missing or older than the lock
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    say "npm ci in ${1#"$ROOT"/}"
    (cd "$1" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci "$ROOT/hack/betterauth"
npm_ci "$E2E/browser"
npm_ci "$E2E/browser/site"

# --- the Docusaurus site, rebuilt only when what goes into it changed ---------------
# Built with placeholder origins (the ports change every run; e2e.test.mjs puts
# the real ones in as it serves), so one build serves every run until the docs,
# the site, the plugin or the lockfile change. Webpack's cache in
# node_modules/.cache keeps a rebuild to about a minute.
SITE="$E2E/browser/site"
mkdir -p "$ARTIFACTS"
site_inputs() {
  (cd "$ROOT" && find hack/e2e/docs hack/e2e/browser/site/src apiserver/web/docusaurus-plugin -type f -print0 \
    | sort -z | xargs -0 sha256sum; sha256sum hack/e2e/browser/site/docusaurus.config.js hack/e2e/browser/site/package-lock.json) \
    | sha256sum | cut -d' ' -f1
}
SITE_HASH=$(site_inputs)
if [ "$(cat "$SITE/build/.inputs" 2>/dev/null)" != "$SITE_HASH" ]; then
  say "docusaurus build of hack/e2e/docs (inputs changed)"
  rm -rf "$SITE/build"
  (cd "$SITE" && timeout 600 npx --no-install docusaurus build --out-dir build) >"$ARTIFACTS/docusaurus-build.log" 2>&1 \
    || { show_log "$ARTIFACTS/docusaurus-build.log"; die "docusaurus build failed"; }
  echo "$SITE_HASH" >"$SITE/build/.inputs"
else
  say "docusaurus site is current (hack/e2e/browser/site/build)"
fi

# --- cleanup: runs on success, failure and Ctrl-C ------------------------------------
TEST_PID=""
cleanup() {
  local rc=$? left=""
  trap - INT TERM EXIT
  stop_process "$TEST_PID" TERM "the browser test"
  stack_stop # chat-apiserver, then BetterAuth, then PostgreSQL
  # The browser test closes Chromium itself; one that outlived it (a killed
  # node) still has its profile under $STACK_DIR: stop it by pid, and say so.
  [ -z "$STACK_DIR" ] || left=$(pgrep -f -- "--user-data-dir=$STACK_DIR/" || true)
  if [ -n "$left" ]; then
    say "Chromium outlived the test (pids ${left//$'\n'/ }); stopping it"
    for p in $left; do stop_process "$p" TERM chromium; done
    [ "$rc" -ne 0 ] || rc=1
  fi
  stack_save_logs "$ARTIFACTS"
  stack_remove_dir
  say "stopped everything (logs and screenshots in ${ARTIFACTS#"$ROOT"/})"
  exit "$rc"
}
stack_init chatbackend-e2e cleanup

# Six free loopback ports, held by one process until all are chosen so none repeats.
read -r PG_PORT AUTH_PORT API_PORT METRICS_PORT PAGE_PORT OTHER_PORT < <(node -e '
  const net = require("net");
  const ss = Array.from({ length: 6 }, () => net.createServer());
  Promise.all(ss.map((s) => new Promise((r) => s.listen(0, "127.0.0.1", r)))).then(() => {
    console.log(ss.map((s) => s.address().port).join(" "));
    ss.forEach((s) => s.close());
  });')
PAGE_ORIGIN="http://127.0.0.1:$PAGE_PORT"
OTHER_ORIGIN="http://127.0.0.1:$OTHER_PORT"

# --- PostgreSQL, and BetterAuth trusting the page's origin only -----------------------
stack_start_postgres "$PG_PORT"
export DATABASE_URL
stack_start_betterauth "$AUTH_PORT" "$PAGE_ORIGIN"

# --- chat-apiserver: offline RAG (no OpenAI, no Qdrant), CORS for the page's origin ---
unset OPENAI_API_KEY OPENAI_BASE_URL QDRANT_URL QDRANT_API_KEY JWKS_URL BETTER_AUTH_AUDIENCE JWT_ALGORITHMS
say "migrate"
timeout 120 "$APISERVER" migrate >"$STACK_DIR/migrate.log" 2>&1 || { show_log "$STACK_DIR/migrate.log"; die "migrate failed"; }
say "ingest hack/e2e/docs"
timeout 120 "$APISERVER" ingest --docs "$E2E/docs" --site-url "$PAGE_ORIGIN/" >"$STACK_DIR/ingest.log" 2>&1 \
  || { show_log "$STACK_DIR/ingest.log"; die "ingest failed"; }
API_URL="http://127.0.0.1:$API_PORT"
say "chat-apiserver on $API_URL (metrics :$METRICS_PORT), CORS_ALLOWED_ORIGINS=$PAGE_ORIGIN"
BETTER_AUTH_URL="$AUTH_URL" CORS_ALLOWED_ORIGINS="$PAGE_ORIGIN" \
  LISTEN_ADDR="127.0.0.1:$API_PORT" METRICS_ADDR="127.0.0.1:$METRICS_PORT" \
  "$APISERVER" serve >"$STACK_DIR/apiserver.log" 2>&1 &
API_PID=$!
wait_for chat-apiserver "$API_PID" "$STACK_DIR/apiserver.log" curl -fsS --max-time 2 "$API_URL/readyz"

# --- the browser test ---------------------------------------------------------------
rm -f "$ARTIFACTS"/*.png
say "browser test: docs site on $PAGE_ORIGIN, refused copy on $OTHER_ORIGIN"
# In the background and waited for, so Ctrl-C or TERM reaches the traps at once
# (cleanup then stops it: timeout passes the TERM on, and Playwright closes Chromium).
(cd "$E2E/browser" && E2E_AUTH_URL="$AUTH_URL" E2E_API_URL="$API_URL" \
  E2E_METRICS_URL="http://127.0.0.1:$METRICS_PORT/metrics" E2E_PAGE_ORIGIN="$PAGE_ORIGIN" \
  E2E_OTHER_ORIGIN="$OTHER_ORIGIN" E2E_ARTIFACTS="$ARTIFACTS" E2E_TMP="$STACK_DIR" \
  E2E_SITE="$SITE/build" E2E_DATABASE_URL="$DATABASE_URL" PSQL="$PG_BIN/psql" \
  exec timeout -k 10 "$E2E_TIMEOUT" node --test --test-reporter=spec e2e.test.mjs) &
TEST_PID=$!
rc=0
wait "$TEST_PID" || rc=$?
TEST_PID=""
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && say "the browser test timed out after ${E2E_TIMEOUT}s"
  for l in apiserver betterauth; do show_log "$STACK_DIR/$l.log"; done
  exit "$rc"
fi
