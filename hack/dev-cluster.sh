#!/usr/bin/env bash
# `make dev`: the whole platform the way users get it, on this machine — a
# single-node cluster (hack/cluster.sh), the operator installed by Helm from
# the image of `make image`, a sample ChatBackend, PostgreSQL and BetterAuth
# on the node's host address, the docs of hack/e2e/docs ingested, and the API
# on localhost through `kubectl port-forward`. Ctrl-C stops everything and
# removes the cluster; nothing is left running. Root (the node's network).
#
# The API-only stack without a cluster is `make dev-api` (hack/dev.sh).
# Ports: API_PORT (8080), AUTH_PORT (3000), PG_PORT (55432).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN="$ROOT/bin"
export PATH="$BIN:$PATH"
export CLUSTER_DIR=${CLUSTER_DIR:-/tmp/chatbackend-dev-cluster}
HOST_IP=198.18.255.1
API_PORT=${API_PORT:-8080}
AUTH_PORT=${AUTH_PORT:-3000}
PG_PORT=${PG_PORT:-55432}
TAG=dev
KUBECONFIG="$CLUSTER_DIR/kubeconfig"
export KUBECONFIG

SAY_PREFIX=$'\033[1mdev:\033[0m'
# shellcheck source=SCRIPTDIR/lib/local-stack.sh
. "$ROOT/hack/lib/local-stack.sh"

[ "$(id -u)" = 0 ] || die "needs root (the node's network and cgroups); 'make dev-api' runs the API alone"
[ -x "$BIN/chat-apiserver" ] || die "$BIN/chat-apiserver is missing: run 'make dev'"
stack_require
PF_PID=""

# shellcheck disable=SC2317 # called by the EXIT trap that stack_init sets
cleanup() {
  trap - INT TERM EXIT
  say "stopping..."
  stop_process "$PF_PID" TERM kubectl-port-forward
  stack_stop
  stack_remove_dir
  "$ROOT/hack/cluster.sh" down
  say "stopped; nothing left running"
}
stack_init chatbackend-dev-cluster cleanup

"$ROOT/hack/cluster.sh" up

say "image localhost/chatbackend:$TAG"
make --no-print-directory image IMAGE_TAG=$TAG >/dev/null
ctr --address "$CLUSTER_DIR/containerd/containerd.sock" -n k8s.io images import "$BIN/image/chatbackend-$TAG.oci.tar" >/dev/null

stack_start_postgres "$PG_PORT" "$HOST_IP"
stack_start_betterauth "$AUTH_PORT" "http://localhost:3001,http://127.0.0.1:3001" "$HOST_IP"

say "helm install the operator"
helm install chatbackend-operator charts/chatbackend-operator --namespace chatbackend-system --create-namespace \
  --set image.repository=localhost/chatbackend --set image.tag=$TAG --set image.pullPolicy=Never --wait --timeout 3m >/dev/null

say "the sample ChatBackend (config/samples/chatbackend-minimal.yaml) against them"
kubectl create secret generic docs-chat-db --from-literal=url="$DATABASE_URL" --from-literal=direct-url="$DATABASE_URL" >/dev/null
sed "s|betterAuthURL: .*|betterAuthURL: $AUTH_URL|" config/samples/chatbackend-minimal.yaml | kubectl apply -f - >/dev/null
kubectl wait chatbackend/docs-chat --for=condition=Ready --timeout=4m >/dev/null

DOCS_DIR="${DOCS_DIR:-$ROOT/hack/e2e/docs}"
say "ingest $DOCS_DIR (from the host, into the ChatBackend's database)"
DATABASE_URL="$DATABASE_URL" "$BIN/chat-apiserver" ingest --docs "$DOCS_DIR" --site-url "${DOCS_SITE_URL:-http://localhost:3000}"

port=$(kubectl get service docs-chat -o jsonpath='{.spec.ports[?(@.name=="http")].port}')
kubectl port-forward service/docs-chat "$API_PORT:$port" >"$STACK_DIR/port-forward.log" 2>&1 &
PF_PID=$!
API="http://127.0.0.1:$API_PORT"
wait_for port-forward "$PF_PID" "$STACK_DIR/port-forward.log" curl -fsS --max-time 2 "$API/healthz"

cat >&2 <<MSG

  chat-apiserver  $API   (kubectl port-forward to service/docs-chat)
  BetterAuth      $AUTH_URL
  PostgreSQL      psql '$DATABASE_URL'
  Kubernetes      export KUBECONFIG=$KUBECONFIG
                  kubectl get chatbackends; kubectl get pods -A

MSG
stack_howto "$AUTH_URL" "$API"
cat >&2 <<MSG

  Ctrl-C stops everything.
MSG
wait "$PF_PID"
