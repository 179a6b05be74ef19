#!/usr/bin/env bash
# Checks the Helm chart: `helm lint --strict` passes and `helm template`
# renders with the default values and with every values file in ci/, and
# values the schema or the templates must refuse are refused.
#
# That the chart's CRD and RBAC copies match what controller-gen generated is
# checked once, by `make verify-generated`. The real `helm install` into a
# kube-apiserver is the Go test in hack/charttest (part of `go test ./...`).
#
# Usage: hack/test-chart.sh [lint]   (default: lint)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHART="$ROOT/charts/chatbackend-operator"
CRDS_CHART="$ROOT/charts/chatbackend-operator-crds"
HELM="${HELM:-$ROOT/bin/helm}"
# `helm template` assumes Kubernetes 1.20 unless told; the chart needs newer.
KUBE_VERSION="${KUBE_VERSION:-1.36.3}"
fail=0

say() { echo "test-chart: $*" >&2; }
bad() { say "FAIL: $*"; fail=1; }

need_helm() {
  if [ ! -x "$HELM" ]; then
    say "helm not found at $HELM: run 'make tools-helm' first"
    exit 1
  fi
}

# expect_refused DESCRIPTION PATTERN HELM-ARGS...: rendering must fail and
# say PATTERN.
expect_refused() {
  local what=$1 pattern=$2 out
  shift 2
  if out=$("$HELM" template t "$CHART" --kube-version "$KUBE_VERSION" "$@" 2>&1); then
    bad "$what: rendered, should have been refused"
  elif ! grep -qE -- "$pattern" <<<"$out"; then
    bad "$what: refused without saying /$pattern/: $out"
  fi
}

lint() {
  need_helm
  local values out
  "$HELM" lint --strict "$CHART" >/dev/null || bad "helm lint --strict (default values)"
  for values in "$CHART"/ci/*-values.yaml; do
    "$HELM" lint --strict "$CHART" -f "$values" >/dev/null || bad "helm lint --strict -f ci/$(basename "$values")"
  done

  # helm lint downgrades template `fail`s to INFO, so render for real too.
  out=$("$HELM" template t "$CHART" --namespace ops --kube-version "$KUBE_VERSION") || bad "helm template (default values)"
  for values in "$CHART"/ci/*-values.yaml; do
    "$HELM" template t "$CHART" --namespace ops --kube-version "$KUBE_VERSION" -f "$values" >/dev/null ||
      bad "helm template -f ci/$(basename "$values")"
  done

  # What the defaults promise.
  local appVersion
  appVersion=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$CHART/Chart.yaml")
  grep -q -- "--default-apiserver-image=ghcr.io/chatbackend/chatbackend:$appVersion\$" <<<"$out" ||
    bad "the default API image is not the chart's own image at appVersion $appVersion"
  grep -q "image: \"ghcr.io/chatbackend/chatbackend:$appVersion\"" <<<"$out" ||
    bad "the operator image is not tagged with appVersion $appVersion"
  grep -q "readOnlyRootFilesystem: true" <<<"$out" || bad "the operator's root filesystem is not read-only"
  grep -q "runAsNonRoot: true" <<<"$out" || bad "the operator does not run as non-root"
  grep -q -- "--leader-elect=true" <<<"$out" || bad "leader election is not on by default"
  if grep -q "kind: ServiceMonitor" <<<"$out"; then bad "a ServiceMonitor is rendered by default"; fi
  if grep -q "grafana_dashboard" <<<"$out"; then bad "a Grafana dashboard is rendered by default"; fi

  # The CRD: a template of the main chart by default (so `helm upgrade`
  # upgrades it), or of the chatbackend-operator-crds chart; kept on
  # uninstall either way.
  grep -q "kind: CustomResourceDefinition" <<<"$out" || bad "the main chart does not install the CRD by default"
  grep -q "helm.sh/resource-policy: keep" <<<"$out" || bad "the main chart's CRD is not kept on uninstall"
  if "$HELM" template t "$CHART" --kube-version "$KUBE_VERSION" --set crds.install=false | grep -q "kind: CustomResourceDefinition"; then
    bad "crds.install=false still renders the CRD"
  fi
  "$HELM" lint --strict "$CRDS_CHART" >/dev/null || bad "helm lint --strict chatbackend-operator-crds"
  local crds
  crds=$("$HELM" template t "$CRDS_CHART" --kube-version "$KUBE_VERSION") || bad "helm template chatbackend-operator-crds"
  grep -q "name: chatbackends.chat.chatbackend.io" <<<"$crds" || bad "the CRDs chart does not render the ChatBackend CRD"
  grep -q "helm.sh/resource-policy: keep" <<<"$crds" || bad "the CRDs chart's CRD is not kept on uninstall"
  if "$HELM" template t "$CRDS_CHART" --set watchNamespaces=x >/dev/null 2>&1; then
    bad "the CRDs chart accepts a value meant for the operator chart"
  fi

  # Cluster-wide by default; Roles in the watched namespaces otherwise.
  if grep -q -- "--watch-namespaces" <<<"$out"; then bad "--watch-namespaces is passed by default"; fi
  grep -q -- "--pod-run-as-user=auto" <<<"$out" || bad "the API pods' user is not detected by default"

  # OpenShift assigns the operator pod's UID: the chart leaves it out there.
  local openshift
  openshift=$("$HELM" template t "$CHART" --kube-version "$KUBE_VERSION" --api-versions security.openshift.io/v1 \
    --show-only templates/deployment.yaml) || bad "helm template on OpenShift"
  if grep -qE "runAs(User|Group):" <<<"$openshift"; then bad "the operator pod asks for a UID on OpenShift"; fi
  grep -q "runAsNonRoot: true" <<<"$openshift" || bad "the operator pod may run as root on OpenShift"
  grep -q "runAsUser: 65532" <<<"$out" || bad "the operator pod does not run as 65532 elsewhere"

  # values.schema.json is strict and the templates guard impossible setups.
  expect_refused "an unknown top-level key" "additional properties|additionalProperties" --set replicas=3
  expect_refused "an unknown nested key" "additional properties|additionalProperties" --set image.name=x
  expect_refused "negative replicas" "replicaCount" --set replicaCount=-1
  expect_refused "a watched namespace that cannot exist" "watchNamespaces" --set-json 'watchNamespaces=["Team_A"]'
  expect_refused "root for the API pods" "apiPodRunAsUser" --set apiPodRunAsUser=0
  expect_refused "a bad pull policy" "pullPolicy" --set image.pullPolicy=Sometimes
  expect_refused "a bad log level" "logLevel" --set logLevel=verbose
  expect_refused "an out-of-range port" "port" --set metrics.port=70000
  expect_refused "two replicas without leader election" "leaderElection" --set replicaCount=2 --set leaderElection.enabled=false
  expect_refused "a ServiceMonitor without the metrics Service" "metrics.service.enabled" \
    --set serviceMonitor.enabled=true --set metrics.service.enabled=false
  expect_refused "a dashboard label the sidecar cannot select" "sidecarLabel" \
    --set monitoring.grafanaDashboard.create=true --set "monitoring.grafanaDashboard.sidecarLabel=grafana dashboard"
}

case "${1:-lint}" in
  lint) lint ;;
  *) say "usage: $0 [lint]"; exit 2 ;;
esac
if [ "$fail" -ne 0 ]; then exit 1; fi
say "ok"
