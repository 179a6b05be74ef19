# shellcheck shell=bash
# The local stack shared by hack/dev.sh and hack/e2e/run.sh: a throwaway
# PostgreSQL and the real BetterAuth server of hack/betterauth, started on
# loopback, with bounded waits, and stopped again on exit. Sourced, not run:
# the caller sets `set -euo pipefail`, ROOT (the repository) and SAY_PREFIX
# (how its messages start), and keeps what is its own (ports, chat-apiserver's
# environment, extra processes) in the script.
#
#   stack_init NAME CLEANUP   traps EXIT/INT/TERM to CLEANUP (INT exits 130, TERM 143),
#                             then makes STACK_DIR (logs, sockets, data), named after NAME
#   stack_require             node, curl and PostgreSQL's server binaries are there; sets PG_BIN
#   stack_start_postgres PORT [HOST]
#                             initdb + postgres on HOST:PORT (127.0.0.1 by default; another
#                             HOST, e.g. the cluster's host address, also admits pods from
#                             198.18.0.0/16), database "chat"; sets PG_PID and DATABASE_URL (not exported)
#   stack_start_betterauth PORT TRUSTED_ORIGINS [HOST]
#                             node hack/betterauth/server.mjs on HOST:PORT (127.0.0.1 by default);
#                             sets AUTH_PID, AUTH_URL
#   stack_stop                stops API_PID (the caller's chat-apiserver), AUTH_PID, PG_PID, in that
#                             order: the API holds database connections, so PostgreSQL goes last
#   stack_save_logs DEST      copies STACK_DIR/*.log to DEST (made when missing)
#   stack_remove_dir          deletes STACK_DIR
#
# Helpers: say, die, show_log LOG, wait_for NAME PID LOG CHECK..., stop_process PID SIGNAL NAME.
# Logs are STACK_DIR/{initdb,postgres,betterauth}.log.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "local-stack.sh is a library: source it from a script" >&2
  exit 2
fi

STACK_DIR="" API_PID="" AUTH_PID="" PG_PID=""

say() { printf '%s %s\n' "${SAY_PREFIX:-stack:}" "$*" >&2; }
die() { say "error: $*"; exit 1; }
show_log() { say "last lines of $1:"; tail -n 30 "$1" >&2 || true; }

# wait_for NAME PID LOG CHECK...: runs CHECK every 0.1 s until it succeeds, for
# 30 s at most; gives up at once (with the end of LOG) when PID has exited.
wait_for() {
  local name=$1 pid=$2 log=$3; shift 3
  for _ in $(seq 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { show_log "$log"; die "$name exited during start-up"; }
    sleep 0.1
  done
  show_log "$log"; die "$name not ready after 30s"
}

# stop_process PID SIGNAL NAME: sends SIGNAL, waits up to 10 s, then SIGKILL.
# An empty PID or a process already gone is fine.
stop_process() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill "-$2" "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  say "$3 did not stop within 10s; killing it"
  kill -KILL "$1" 2>/dev/null || true
}

stack_init() { # $1 name of the temporary directory, $2 cleanup function
  # Traps first, so a failure of anything after this point still cleans up.
  # shellcheck disable=SC2064 # the function's name is meant to be expanded now
  trap "$2" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
}

stack_require() {
  command -v node >/dev/null || die "node (>= 20) is not on PATH"
  command -v curl >/dev/null || die "curl is not on PATH"
  # shellcheck disable=SC2012 # directory names under /usr/lib/postgresql are plain versions
  PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    die "no PostgreSQL server binaries (apt-get install postgresql), or set PG_BIN"
  fi
}

stack_start_postgres() { # $1 port, $2 listen address (127.0.0.1)
  local port=$1 host=${2:-127.0.0.1} as=() user
  # PostgreSQL refuses to run as root: as root, run it as the postgres (or nobody) user.
  if [ "$(id -u)" = 0 ]; then
    user=postgres; id "$user" >/dev/null 2>&1 || user=nobody
    chown "$user" "$STACK_DIR"
    as=(setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --clear-groups)
  fi
  say "PostgreSQL ($PG_BIN) on $host:$port, data in $STACK_DIR/pg"
  "${as[@]}" "$PG_BIN/initdb" -D "$STACK_DIR/pg" -U postgres -A trust -E UTF8 --no-locale --no-sync --no-instructions \
    >"$STACK_DIR/initdb.log" 2>&1 || { show_log "$STACK_DIR/initdb.log"; die "initdb failed"; }
  if [ "$host" != 127.0.0.1 ]; then
    # Pods of hack/cluster.sh connect from the pod range.
    echo "host all all 198.18.0.0/16 trust" >>"$STACK_DIR/pg/pg_hba.conf"
  fi
  # The socket goes into STACK_DIR too (-k), so nothing is left in /var/run.
  (cd "$STACK_DIR" && exec "${as[@]}" "$PG_BIN/postgres" -D "$STACK_DIR/pg" -p "$port" -k "$STACK_DIR" \
    -c listen_addresses="$host" -c fsync=off -c synchronous_commit=off) >"$STACK_DIR/postgres.log" 2>&1 &
  PG_PID=$!
  wait_for postgres "$PG_PID" "$STACK_DIR/postgres.log" "$PG_BIN/pg_isready" -q -h "$host" -p "$port" -U postgres
  "$PG_BIN/psql" -q -h "$host" -p "$port" -U postgres -d postgres -c 'CREATE DATABASE chat' >/dev/null \
    || die "could not create the database chat"
  # shellcheck disable=SC2034 # for the caller
  DATABASE_URL="postgres://postgres@$host:$port/chat?sslmode=disable"
}

stack_start_betterauth() { # $1 port, $2 trusted origins (comma-separated), $3 listen address (127.0.0.1)
  local port=$1 origins=$2 host=${3:-127.0.0.1}
  AUTH_URL="http://$host:$port"
  say "BetterAuth on $AUTH_URL"
  (cd "$ROOT/hack/betterauth" && PORT="$port" HOST="$host" BETTER_AUTH_URL="$AUTH_URL" \
    TRUSTED_ORIGINS="$origins" exec node server.mjs) >"$STACK_DIR/betterauth.log" 2>&1 &
  AUTH_PID=$!
  wait_for betterauth "$AUTH_PID" "$STACK_DIR/betterauth.log" curl -fsS --max-time 2 "$AUTH_URL/api/auth/jwks"
}

stack_stop() {
  stop_process "$API_PID" TERM chat-apiserver
  stop_process "$AUTH_PID" TERM betterauth
  stop_process "$PG_PID" INT postgres # SIGINT: PostgreSQL's fast shutdown
  API_PID="" AUTH_PID="" PG_PID=""
  wait 2>/dev/null || true
}

stack_save_logs() { # $1 directory that keeps a copy of STACK_DIR/*.log
  local l
  mkdir -p "$1"
  for l in "$STACK_DIR"/*.log; do
    if [ -f "$l" ]; then cp "$l" "$1/"; fi
  done
}

stack_remove_dir() {
  if [ -n "$STACK_DIR" ]; then rm -rf "$STACK_DIR"; fi
  STACK_DIR=""
}

# stack_howto AUTH_URL API: prints how to get a BetterAuth token and call the
# API, for `make dev` and `make dev-api` alike.
stack_howto() {
  local AUTH_URL=$1 API=$2
  cat >&2 <<MSG
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
MSG
}
