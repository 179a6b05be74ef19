#!/usr/bin/env bash
# `make e2e-cluster`: the operator on a real single-node cluster. Owns the
# lifecycle the Go scenario (hack/e2e/cluster/cluster_test.go) runs in:
#
#   cluster up → images (make image, a second tag, the client) imported into
#   the node's containerd → images of prometheus-operator, its config
#   reloader and Prometheus (built by hack/tools.sh prometheus-operator) →
#   PostgreSQL on the host address → go test -tags e2e
#
# and always tears everything down on exit (Ctrl-C included). On failure the
# logs of every pod and host process, `kubectl describe` of everything and the
# events go to hack/e2e/artifacts/cluster/. Prints each phase's time. Root.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
BIN="$ROOT/bin"
export PATH="$BIN:$PATH"
export CLUSTER_DIR=${CLUSTER_DIR:-/tmp/chatbackend-cluster-e2e}
HOST_IP=198.18.255.1
PG_PORT=${E2E_PG_PORT:-55433}
ARTIFACTS="$ROOT/hack/e2e/artifacts/cluster"
CTR=(ctr --address "$CLUSTER_DIR/containerd/containerd.sock" -n k8s.io)

SAY_PREFIX=$'\033[1me2e-cluster:\033[0m'
# shellcheck source=SCRIPTDIR/../../lib/local-stack.sh
. "$ROOT/hack/lib/local-stack.sh"

t_all=$SECONDS phase_name="" phase_t=$SECONDS
phase() {
  if [ -n "$phase_name" ]; then say "$(printf 'phase %-34s %5ds' "$phase_name" $((SECONDS - phase_t)))"; fi
  phase_name=${1:-} phase_t=$SECONDS
}

collect_artifacts() {
  say "collecting artifacts in $ARTIFACTS"
  rm -rf "$ARTIFACTS" && mkdir -p "$ARTIFACTS/pods"
  local k=(kubectl --kubeconfig "$CLUSTER_DIR/kubeconfig" --request-timeout=20s)
  "${k[@]}" get all,chatbackends,jobs,secrets,configmaps,events -A -o wide >"$ARTIFACTS/get.txt" 2>&1 || true
  "${k[@]}" describe all,chatbackends,jobs,nodes -A >"$ARTIFACTS/describe.txt" 2>&1 || true
  "${k[@]}" get events -A --sort-by=.lastTimestamp >"$ARTIFACTS/events.txt" 2>&1 || true
  local ns pod
  "${k[@]}" get pods -A --no-headers -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name 2>/dev/null |
    while read -r ns pod; do
      "${k[@]}" logs -n "$ns" "$pod" --all-containers --prefix >"$ARTIFACTS/pods/$ns.$pod.log" 2>&1 || true
      "${k[@]}" logs -n "$ns" "$pod" --all-containers --prefix --previous >>"$ARTIFACTS/pods/$ns.$pod.log" 2>/dev/null || true
    done
  cp -r "$CLUSTER_DIR/logs" "$ARTIFACTS/host" 2>/dev/null || true
  stack_save_logs "$ARTIFACTS/host"
}

# shellcheck disable=SC2317 # called by the EXIT trap that stack_init sets
cleanup() {
  local rc=$?
  trap - INT TERM EXIT
  phase "teardown"
  if [ "$rc" != 0 ] && [ -d "$CLUSTER_DIR" ]; then collect_artifacts; fi
  stack_stop
  stack_remove_dir
  "$ROOT/hack/cluster.sh" down || rc=1
  phase
  say "total $((SECONDS - t_all))s; exit $rc"
  exit "$rc"
}

[ "$(id -u)" = 0 ] || die "needs root (the cluster's network and cgroups)"
stack_require
stack_init chatbackend-e2e-cluster cleanup

phase "cluster up"
"$ROOT/hack/cluster.sh" up

phase "images: build and import"
tag1=e2e-1 tag2=e2e-2
make --no-print-directory image IMAGE_TAG=$tag1 >/dev/null
# The upgrade's second tag: same content, a new image reference, so the
# operator runs a new migrations Job and rolls the Deployment.
go run ./hack/image app --tag "localhost/chatbackend:$tag2" --out "$BIN/image/chatbackend-$tag2.oci.tar" \
  --manager "$BIN/image/manager" --apiserver "$BIN/image/chat-apiserver" >/dev/null
CGO_ENABLED=0 go build -trimpath -o "$BIN/e2e/client" ./hack/e2e/cluster/client
go run ./hack/image binary --tag localhost/chatbackend-e2e-client:v1 --out "$BIN/image/client.oci.tar" --bin "$BIN/e2e/client" >/dev/null
for a in "chatbackend-$tag1.oci.tar" "chatbackend-$tag2.oci.tar" client.oci.tar; do
  "${CTR[@]}" images import "$BIN/image/$a" >/dev/null
done

phase "images: prometheus-operator, Prometheus"
PO="$BIN/prometheus-operator"
po_version=$(basename "$(readlink -f "$PO")"); po_version=${po_version#prometheus-operator-}
# "prometheus, version 3.13.1 (...)": the operator renders flags and config
# for the version the Prometheus resource names.
prom_version=v$("$PO/prometheus" --version 2>&1 | sed -n 's/^prometheus, version \([0-9.]*\).*/\1/p')
go build -o "$BIN/e2e/image" ./hack/image
"$BIN/e2e/image" binary --tag "localhost/prometheus-operator:$po_version" --out "$BIN/image/prometheus-operator.oci.tar" \
  --bin "$PO/operator" --path /bin/operator >/dev/null
"$BIN/e2e/image" binary --tag "localhost/prometheus-config-reloader:$po_version" --out "$BIN/image/prometheus-config-reloader.oci.tar" \
  --bin "$PO/prometheus-config-reloader" --path /bin/prometheus-config-reloader >/dev/null
"$BIN/e2e/image" binary --tag "localhost/prometheus:$prom_version" --out "$BIN/image/prometheus.oci.tar" \
  --bin "$PO/prometheus" --path /bin/prometheus >/dev/null
for a in prometheus-operator.oci.tar prometheus-config-reloader.oci.tar prometheus.oci.tar; do
  "${CTR[@]}" images import "$BIN/image/$a" >/dev/null
done

phase "PostgreSQL on $HOST_IP"
stack_start_postgres "$PG_PORT" "$HOST_IP"

phase "go test (scenario)"
KUBECONFIG="$CLUSTER_DIR/kubeconfig" E2E_HOST_IP=$HOST_IP E2E_DATABASE_URL="$DATABASE_URL" \
  E2E_IMAGE="localhost/chatbackend:$tag1" E2E_IMAGE_NEXT="localhost/chatbackend:$tag2" \
  E2E_CLIENT_IMAGE=localhost/chatbackend-e2e-client:v1 E2E_CLIENT="$BIN/e2e/client" \
  E2E_PROMETHEUS_OPERATOR="$PO" E2E_PROMETHEUS_OPERATOR_IMAGE="localhost/prometheus-operator:$po_version" \
  E2E_CONFIG_RELOADER_IMAGE="localhost/prometheus-config-reloader:$po_version" \
  E2E_PROMETHEUS_IMAGE="localhost/prometheus:$prom_version" E2E_PROMETHEUS_VERSION="$prom_version" \
  go test -tags e2e -count=1 -timeout 30m -v ./hack/e2e/cluster/
