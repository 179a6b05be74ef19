#!/usr/bin/env bash
# Runs the platform locally: a throwaway PostgreSQL, the real BetterAuth server
# of hack/betterauth, and bin/chat-apiserver (migrate, then serve) against both.
# Ctrl-C stops everything and deletes the database; nothing is left running.
#
# Run through `make dev` (builds bin/chat-apiserver and installs BetterAuth first).
# Ports can be changed with PG_PORT, AUTH_PORT, API_PORT, METRICS_PORT.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
APISERVER="$ROOT/bin/chat-apiserver"
PG_PORT=${PG_PORT:-55432}
AUTH_PORT=${AUTH_PORT:-3000}
API_PORT=${API_PORT:-8080}
METRICS_PORT=${METRICS_PORT:-9090}
CORS_ORIGINS=${CORS_ALLOWED_ORIGINS:-http://localhost:3001,http://127.0.0.1:3001}

say() { printf '\033[1mdev:\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- preconditions -----------------------------------------------------------
[ -x "$APISERVER" ] || die "$APISERVER is missing: run 'make dev' (or 'make build')"
[ -d "$ROOT/hack/betterauth/node_modules/better-auth" ] || die "BetterAuth is not installed: run 'make dev' (or 'make test-deps-apiserver')"
command -v node >/dev/null || die "node (>= 20) is not on PATH"
command -v curl >/dev/null || die "curl is not on PATH"
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL server binaries (apt-get install postgresql), or set PG_BIN"
for p in "$PG_PORT" "$AUTH_PORT" "$API_PORT" "$METRICS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use (override with PG_PORT/AUTH_PORT/API_PORT/METRICS_PORT)"; fi
done

# --- cleanup: runs on Ctrl-C, on any failure, and on normal exit -------------
DIR=$(mktemp -d "${TMPDIR:-/tmp}/chatbackend-dev.XXXXXX")
API_PID="" AUTH_PID="" PG_PID=""
stop() { # $1 pid, $2 signal, $3 name
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill "-$2" "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  say "$3 did not stop within 10s; killing it"
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  trap - INT TERM EXIT
  say "stopping..."
  # API first (it holds database connections), then BetterAuth, then PostgreSQL (fast shutdown).
  stop "$API_PID" TERM chat-apiserver
  stop "$AUTH_PID" TERM betterauth
  stop "$PG_PID" INT postgres
  wait 2>/dev/null || true
  rm -rf "$DIR"
  say "stopped; nothing left running"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() { say "last lines of $1:"; tail -n 30 "$1" >&2 || true; }
wait_for() { # $1 name, $2 pid, $3 log, then the check command
  local name=$1 pid=$2 log=$3; shift 3
  for _ in $(seq 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { show_log "$log"; die "$name exited during start-up"; }
    sleep 0.1
  done
  show_log "$log"; die "$name not ready after 30s"
}

# --- PostgreSQL ----------------------------------------------------------------
# PostgreSQL refuses to run as root: as root, run it as the postgres (or nobody) user.
AS=()
if [ "$(id -u)" = 0 ]; then
  PGOS_USER=postgres; id "$PGOS_USER" >/dev/null 2>&1 || PGOS_USER=nobody
  chown "$PGOS_USER" "$DIR"
  AS=(setpriv --reuid="$(id -u "$PGOS_USER")" --regid="$(id -g "$PGOS_USER")" --clear-groups)
fi
say "PostgreSQL ($PG_BIN) on 127.0.0.1:$PG_PORT, data in $DIR/pg"
"${AS[@]}" "$PG_BIN/initdb" -D "$DIR/pg" -U postgres -A trust -E UTF8 --no-locale --no-sync --no-instructions >"$DIR/initdb.log" 2>&1 \
  || { show_log "$DIR/initdb.log"; die "initdb failed"; }
(cd "$DIR" && exec "${AS[@]}" "$PG_BIN/postgres" -D "$DIR/pg" -p "$PG_PORT" -k "$DIR" \
  -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off) >"$DIR/postgres.log" 2>&1 &
PG_PID=$!
wait_for postgres "$PG_PID" "$DIR/postgres.log" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres
"$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c 'CREATE DATABASE chat' >/dev/null
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/chat?sslmode=disable"

# --- BetterAuth ------------------------------------------------------------------
AUTH_URL="http://127.0.0.1:$AUTH_PORT"
say "BetterAuth on $AUTH_URL"
(cd "$ROOT/hack/betterauth" && PORT="$AUTH_PORT" HOST=127.0.0.1 BETTER_AUTH_URL="$AUTH_URL" \
  TRUSTED_ORIGINS="$CORS_ORIGINS" exec node server.mjs) >"$DIR/betterauth.log" 2>&1 &
AUTH_PID=$!
wait_for betterauth "$AUTH_PID" "$DIR/betterauth.log" curl -fsS "$AUTH_URL/api/auth/jwks"

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
"$APISERVER" serve 2> >(tee "$DIR/apiserver.log" >&2) &
API_PID=$!
API="http://127.0.0.1:$API_PORT"
wait_for chat-apiserver "$API_PID" "$DIR/apiserver.log" curl -fsS "$API/readyz"

cat >&2 <<MSG

  chat-apiserver  $API        (metrics: http://127.0.0.1:$METRICS_PORT/metrics)
  BetterAuth      $AUTH_URL
  PostgreSQL      psql '$DATABASE_URL'

  Get a token (sign up once, then sign in and ask the jwt plugin for a JWT):
    curl -s $AUTH_URL/api/auth/sign-up/email -H 'Content-Type: application/json' \\
      -d '{"email":"me@example.com","password":"correct horse battery","name":"Me"}'
    curl -s -c /tmp/dev-cookies $AUTH_URL/api/auth/sign-in/email -H 'Content-Type: application/json' \\
      -d '{"email":"me@example.com","password":"correct horse battery"}'
    TOKEN=\$(curl -s -b /tmp/dev-cookies $AUTH_URL/api/auth/token | sed -E 's/.*"token":"([^"]+)".*/\1/')

  Call the API:
    curl -s $API/v1/me -H "Authorization: Bearer \$TOKEN"
    curl -s $API/v1/conversations -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"title":"hello"}'
    curl -s $API/v1/conversations -H "Authorization: Bearer \$TOKEN"
    curl -s $API/agents/run -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
      -d '{"question":"How do I allow my docs site origin?"}'
    curl -sN $API/v1/conversations/<id>/messages -H "Authorization: Bearer \$TOKEN" \\
      -H 'Accept: text/event-stream' -H 'Content-Type: application/json' -d '{"content":"How do I embed the widget?"}'

  Answers are offline (extractive, labelled) unless OPENAI_API_KEY is set.

  Tokens live 15 minutes; users live until Ctrl-C (BetterAuth keeps them in memory).
  Ctrl-C stops everything.

MSG

# Run until Ctrl-C, or until one of the three exits on its own.
set +e
wait -n "$PG_PID" "$AUTH_PID" "$API_PID"
say "a process exited unexpectedly"
for l in postgres betterauth; do show_log "$DIR/$l.log"; done
exit 1
