#!/usr/bin/env bash
# Browser end-to-end test (issue 6): starts a throwaway PostgreSQL, the real
# BetterAuth server of hack/betterauth and bin/chat-apiserver (migrate, ingest
# of hack/e2e/docs with the offline embedder, serve) on loopback, each on its
# own port, then runs hack/e2e/browser/e2e.test.mjs with `node --test`: headless
# Chromium opens a page on a fourth origin that signs in with BetterAuth and
# chats with the API, and the same page on a fifth origin that CORS refuses.
#
# Run through `make e2e` (builds bin/chat-apiserver first). It installs what it
# needs itself: Chromium (hack/tools.sh chromium) and the npm packages of
# hack/betterauth and hack/e2e/browser. Screenshots, the browser console and
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

say() { printf 'e2e: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- what the test needs, installed when missing ---------------------------------
[ -x "$APISERVER" ] || die "$APISERVER is missing: run 'make e2e' (or 'make build')"
"$APISERVER" ingest --help >/dev/null 2>&1 || die "$APISERVER has no ingest command: rebuild it ('make build')"
command -v node >/dev/null || die "node (>= 20) is not on PATH"
command -v curl >/dev/null || die "curl is not on PATH"
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
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL server binaries (apt-get install postgresql), or set PG_BIN"

# --- cleanup: runs on success, failure and Ctrl-C ------------------------------------
DIR=$(mktemp -d "${TMPDIR:-/tmp}/chatbackend-e2e.XXXXXX")
TEST_PID="" API_PID="" AUTH_PID="" PG_PID=""
stop() { # $1 pid, $2 signal, $3 name
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill "-$2" "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  say "$3 did not stop within 10s; killing it"
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - INT TERM EXIT
  stop "$TEST_PID" TERM "the browser test"
  stop "$API_PID" TERM chat-apiserver
  stop "$AUTH_PID" TERM betterauth
  stop "$PG_PID" INT postgres
  wait 2>/dev/null || true
  # The browser test closes Chromium itself; one that outlived it (a killed
  # node) still has its profile under $DIR: stop it by pid, and say so.
  local left
  left=$(pgrep -f -- "--user-data-dir=$DIR/" || true)
  if [ -n "$left" ]; then
    say "Chromium outlived the test (pids $(echo $left)); stopping it"
    for p in $left; do stop "$p" TERM chromium; done
    [ "$rc" -ne 0 ] || rc=1
  fi
  mkdir -p "$ARTIFACTS"
  for l in "$DIR"/*.log; do [ -f "$l" ] && cp "$l" "$ARTIFACTS/"; done
  rm -rf "$DIR"
  say "stopped everything (logs and screenshots in ${ARTIFACTS#"$ROOT"/})"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() { say "last lines of $1:"; tail -n 30 "$1" >&2 || true; }
wait_for() { # $1 name, $2 pid, $3 log, then the check command; 30 s at most
  local name=$1 pid=$2 log=$3; shift 3
  for _ in $(seq 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { show_log "$log"; die "$name exited during start-up"; }
    sleep 0.1
  done
  show_log "$log"; die "$name not ready after 30s"
}

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

# --- PostgreSQL (refuses to run as root: then as postgres or nobody) ---------------
AS=()
if [ "$(id -u)" = 0 ]; then
  PGOS_USER=postgres; id "$PGOS_USER" >/dev/null 2>&1 || PGOS_USER=nobody
  chown "$PGOS_USER" "$DIR"
  AS=(setpriv --reuid="$(id -u "$PGOS_USER")" --regid="$(id -g "$PGOS_USER")" --clear-groups)
fi
say "PostgreSQL on 127.0.0.1:$PG_PORT"
"${AS[@]}" "$PG_BIN/initdb" -D "$DIR/pg" -U postgres -A trust -E UTF8 --no-locale --no-sync --no-instructions >"$DIR/initdb.log" 2>&1 \
  || { show_log "$DIR/initdb.log"; die "initdb failed"; }
(cd "$DIR" && exec "${AS[@]}" "$PG_BIN/postgres" -D "$DIR/pg" -p "$PG_PORT" -k "$DIR" \
  -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off) >"$DIR/postgres.log" 2>&1 &
PG_PID=$!
wait_for postgres "$PG_PID" "$DIR/postgres.log" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres
"$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c 'CREATE DATABASE chat' >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/chat?sslmode=disable"

# --- BetterAuth: trusts the page's origin only ----------------------------------------
AUTH_URL="http://127.0.0.1:$AUTH_PORT"
say "BetterAuth on $AUTH_URL"
(cd "$ROOT/hack/betterauth" && PORT="$AUTH_PORT" HOST=127.0.0.1 BETTER_AUTH_URL="$AUTH_URL" \
  TRUSTED_ORIGINS="$PAGE_ORIGIN" exec node server.mjs) >"$DIR/betterauth.log" 2>&1 &
AUTH_PID=$!
wait_for betterauth "$AUTH_PID" "$DIR/betterauth.log" curl -fsS --max-time 2 "$AUTH_URL/api/auth/jwks"

# --- chat-apiserver: offline RAG (no OpenAI, no Qdrant), CORS for the page's origin ---
unset OPENAI_API_KEY OPENAI_BASE_URL QDRANT_URL QDRANT_API_KEY JWKS_URL BETTER_AUTH_AUDIENCE JWT_ALGORITHMS
say "migrate"
timeout 120 "$APISERVER" migrate >"$DIR/migrate.log" 2>&1 || { show_log "$DIR/migrate.log"; die "migrate failed"; }
say "ingest hack/e2e/docs"
timeout 120 "$APISERVER" ingest --docs "$E2E/docs" --site-url "$PAGE_ORIGIN/" >"$DIR/ingest.log" 2>&1 \
  || { show_log "$DIR/ingest.log"; die "ingest failed"; }
API_URL="http://127.0.0.1:$API_PORT"
say "chat-apiserver on $API_URL (metrics :$METRICS_PORT), CORS_ALLOWED_ORIGINS=$PAGE_ORIGIN"
BETTER_AUTH_URL="$AUTH_URL" CORS_ALLOWED_ORIGINS="$PAGE_ORIGIN" \
  LISTEN_ADDR="127.0.0.1:$API_PORT" METRICS_ADDR="127.0.0.1:$METRICS_PORT" \
  "$APISERVER" serve >"$DIR/apiserver.log" 2>&1 &
API_PID=$!
wait_for chat-apiserver "$API_PID" "$DIR/apiserver.log" curl -fsS --max-time 2 "$API_URL/readyz"

# --- the browser test ---------------------------------------------------------------
rm -f "$ARTIFACTS"/*.png
say "browser test: page on $PAGE_ORIGIN, refused page on $OTHER_ORIGIN"
# In the background and waited for, so Ctrl-C or TERM reaches the traps at once
# (cleanup then stops it: timeout passes the TERM on, and Playwright closes Chromium).
(cd "$E2E/browser" && E2E_AUTH_URL="$AUTH_URL" E2E_API_URL="$API_URL" \
  E2E_METRICS_URL="http://127.0.0.1:$METRICS_PORT/metrics" E2E_PAGE_ORIGIN="$PAGE_ORIGIN" \
  E2E_OTHER_ORIGIN="$OTHER_ORIGIN" E2E_ARTIFACTS="$ARTIFACTS" E2E_TMP="$DIR" \
  exec timeout -k 10 "$E2E_TIMEOUT" node --test --test-reporter=spec e2e.test.mjs) &
TEST_PID=$!
rc=0
wait "$TEST_PID" || rc=$?
TEST_PID=""
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && say "the browser test timed out after ${E2E_TIMEOUT}s"
  for l in apiserver betterauth; do show_log "$DIR/$l.log"; done
  exit "$rc"
fi
