#!/usr/bin/env bash
# Runs the platform locally: a throwaway PostgreSQL, the real BetterAuth server
# of hack/betterauth, and bin/chat-apiserver (migrate, then serve) against both.
# Ctrl-C stops everything and deletes the database; nothing is left running.
#
# Run through `make dev-api` (builds bin/chat-apiserver and installs BetterAuth first).
# Ports can be changed with PG_PORT, AUTH_PORT, API_PORT, METRICS_PORT.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
APISERVER="$ROOT/bin/chat-apiserver"
PG_PORT=${PG_PORT:-55432}
AUTH_PORT=${AUTH_PORT:-3000}
API_PORT=${API_PORT:-8080}
METRICS_PORT=${METRICS_PORT:-9090}
CORS_ORIGINS=${CORS_ALLOWED_ORIGINS:-http://localhost:3001,http://127.0.0.1:3001}

SAY_PREFIX=$'\033[1mdev:\033[0m'
# shellcheck source=SCRIPTDIR/lib/local-stack.sh
. "$ROOT/hack/lib/local-stack.sh"

# --- preconditions -----------------------------------------------------------
[ -x "$APISERVER" ] || die "$APISERVER is missing: run 'make dev-api' (or 'make build')"
[ -d "$ROOT/hack/betterauth/node_modules/better-auth" ] || die "BetterAuth is not installed: run 'make dev-api' (or 'make test-deps-apiserver')"
stack_require
for p in "$PG_PORT" "$AUTH_PORT" "$API_PORT" "$METRICS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use (override with PG_PORT/AUTH_PORT/API_PORT/METRICS_PORT)"; fi
done

# --- cleanup: runs on Ctrl-C, on any failure, and on normal exit -------------
# shellcheck disable=SC2317 # called by the EXIT trap that stack_init sets
cleanup() {
  trap - INT TERM EXIT
  say "stopping..."
  stack_stop # chat-apiserver, then BetterAuth, then PostgreSQL
  stack_remove_dir
  say "stopped; nothing left running"
}
stack_init chatbackend-dev cleanup

# --- PostgreSQL and BetterAuth -------------------------------------------------
stack_start_postgres "$PG_PORT"
stack_start_betterauth "$AUTH_PORT" "$CORS_ORIGINS"

# --- chat-apiserver ----------------------------------------------------------------
say "migrate"
DATABASE_URL="$DATABASE_URL" "$APISERVER" migrate
# Something to answer from: a small Docusaurus-style tree (DOCS_DIR to use your
# own). Without OPENAI_API_KEY the offline embedder and extractive answers run,
# so the whole chat path works with no external service.
DOCS_DIR="${DOCS_DIR:-$ROOT/hack/e2e/docs}"
say "ingest $DOCS_DIR"
DATABASE_URL="$DATABASE_URL" "$APISERVER" ingest --docs "$DOCS_DIR" --site-url "${DOCS_SITE_URL:-http://localhost:3000}"
export DATABASE_URL BETTER_AUTH_URL="$AUTH_URL" CORS_ALLOWED_ORIGINS="$CORS_ORIGINS" \
  LISTEN_ADDR="127.0.0.1:$API_PORT" METRICS_ADDR="127.0.0.1:$METRICS_PORT"
# Its log goes to the terminal and to apiserver.log through a tee that is this
# script's child (a FIFO, not >(tee): that tee would be the server's child and
# outlive it), so the cleanup's wait also waits for the last lines.
mkfifo "$STACK_DIR/apiserver.fifo"
tee "$STACK_DIR/apiserver.log" <"$STACK_DIR/apiserver.fifo" >&2 &
"$APISERVER" serve 2>"$STACK_DIR/apiserver.fifo" &
API_PID=$!
API="http://127.0.0.1:$API_PORT"
wait_for chat-apiserver "$API_PID" "$STACK_DIR/apiserver.log" curl -fsS --max-time 2 "$API/readyz"

cat >&2 <<MSG

  chat-apiserver  $API        (metrics: http://127.0.0.1:$METRICS_PORT/metrics)
  BetterAuth      $AUTH_URL
  PostgreSQL      psql '$DATABASE_URL'

MSG
stack_howto "$AUTH_URL" "$API"
cat >&2 <<MSG

  Answers are offline (extractive, labelled) unless OPENAI_API_KEY is set.

  Tokens live 15 minutes; users live until Ctrl-C (BetterAuth keeps them in memory).
  Ctrl-C stops everything.

MSG

# Run until Ctrl-C, or until one of the three exits on its own.
set +e
wait -n "$PG_PID" "$AUTH_PID" "$API_PID"
say "a process exited unexpectedly"
for l in postgres betterauth; do show_log "$STACK_DIR/$l.log"; done
exit 1
