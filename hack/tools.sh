#!/usr/bin/env bash
# Installs the tools the tests and `make dev` need, once per machine.
#
# Why a machine-level cache: CI runs on a fresh clone, so bin/ starts empty
# every time; kube-apiserver takes ~11 minutes to build from source here and
# helm ~4, so built binaries live in $CHATBACKEND_TOOLS_CACHE and bin/ gets
# symlinks to them.
#
# Usage: hack/tools.sh [postgres] [node] [etcd] [kube-apiserver] [envtest] [helm] [controller-gen] [golangci-lint] [kube-api-linter] [prometheus] [chromium]
#                     [cluster] [kubelet] [kube-controller-manager] [kube-scheduler] [kube-proxy] [kubectl] [prometheus-operator] [all]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/bin"
CACHE="${CHATBACKEND_TOOLS_CACHE:-$HOME/.cache/chatbackend/tools}"
K8S_VERSION="${K8S_VERSION:-1.36.3}"
HELM_VERSION="${HELM_VERSION:-v3.19.2}"
CONTROLLER_GEN_VERSION="${CONTROLLER_GEN_VERSION:-v0.19.0}"
# Also the version hack/tools/kube-api-linter/go.mod requires (checked below).
GOLANGCI_LINT_VERSION="${GOLANGCI_LINT_VERSION:-v2.15.0}"
# The release line of pkg/apis/monitoring in go.mod (v0.93.x): the newest
# patch release whose main module and pkg/client the module proxy serves.
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.93.1}"
mkdir -p "$BIN" "$CACHE"
# The Makefile puts bin/ first on PATH; system binaries are looked up without
# it, or `link "$(type -P etcd)" etcd` would link bin/etcd to itself.
PATH=$(tr ':' '\n' <<<"$PATH" | grep -vxF "$BIN" | paste -sd:)

log() { echo "hack/tools.sh: $*" >&2; }

apt_updated=""
apt_install() {
  # $@: packages. Installs only what is missing.
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

link() { ln -sf "$1" "$BIN/$2"; }

etcd() {
  if ! type -P etcd >/dev/null 2>&1; then apt_install etcd-server; fi
  link "$(type -P etcd)" etcd
}

# --- Kubernetes components (kube-apiserver for envtest; the rest for hack/cluster.sh) ---

kube_build_dir=""
kube_build_module() {
  # One throwaway module requiring k8s.io/kubernetes, shared by every
  # component build in this run so the module download happens once.
  [ -n "$kube_build_dir" ] && return 0
  kube_build_dir=$(mktemp -d)
  local gomod
  gomod=$(cd "$kube_build_dir" && go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module kubebuild"
    echo "go 1.25"
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    # k8s.io/kubernetes replaces its staging modules with local paths;
    # point each at its published v0.x release instead.
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | sort -u |
      while read -r m; do echo "replace $m => $m v0.${K8S_VERSION#1.}"; done
  } >"$kube_build_dir/go.mod"
  trap 'rm -rf "$kube_build_dir"' EXIT
}

kube_component() {
  # $1: a command under k8s.io/kubernetes/cmd (kube-apiserver, kubelet, ...).
  # Why the ldflags: without them every binary reports v0.0.0-master, which
  # breaks `kubectl version` and any chart's kubeVersion constraint.
  # Cached under their own directory: the older kube-apiserver-vX cache entry
  # was built without the version ldflags.
  local name=$1 out="$CACHE/kubernetes-v$K8S_VERSION/$1"
  if [ ! -x "$out" ]; then
    mkdir -p "$CACHE/kubernetes-v$K8S_VERSION"
    log "building $name v$K8S_VERSION from source (minutes, once per machine)"
    kube_build_module
    local major=${K8S_VERSION%%.*} minor=${K8S_VERSION#*.}; minor=${minor%%.*}
    local ldflags="-s -w" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    done
    (cd "$kube_build_dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -ldflags "$ldflags" -o "$out.tmp" "k8s.io/kubernetes/cmd/$name") || {
      log "$name build failed (work dir $kube_build_dir)"; return 1; }
    mv "$out.tmp" "$out"
  fi
  link "$out" "$name"
}

kube_apiserver() { kube_component kube-apiserver; }

# Host packages a single-node cluster needs (hack/cluster.sh).
node_packages() {
  apt_install containerd runc containernetworking-plugins iptables etcd-server conntrack socat openssl iproute2
  link "$(type -P etcd)" etcd
}

cluster() {
  node_packages
  etcd
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do kube_component "$c"; done
  helm
}

go_tool() {
  # $1 name, $2 package@version
  local name=$1 pkg=$2 ver=${2##*@}
  local out="$CACHE/$name-$ver"
  if [ ! -x "$out" ]; then
    log "go install $pkg"
    local gobin; gobin=$(mktemp -d)
    GOBIN="$gobin" go install "$pkg"
    mv "$gobin/$name" "$out"
    rm -rf "$gobin"
  fi
  link "$out" "$name"
}

helm() { go_tool helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; }
controller_gen() { go_tool controller-gen "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION"; }
golangci_lint() { go_tool golangci-lint "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"; }

kube_api_linter() {
  # golangci-lint with the kube-api-linter plugin compiled in, built from the
  # small module in hack/tools/kube-api-linter (its go.mod/go.sum pin both).
  # `golangci-lint custom` would do the same but clones golangci-lint with git.
  local mod="$ROOT/hack/tools/kube-api-linter"
  if ! grep -q "github.com/golangci/golangci-lint/v2 $GOLANGCI_LINT_VERSION\$" "$mod/go.mod"; then
    log "hack/tools/kube-api-linter/go.mod does not require golangci-lint $GOLANGCI_LINT_VERSION: run 'go get github.com/golangci/golangci-lint/v2@$GOLANGCI_LINT_VERSION && go mod tidy' there"
    return 1
  fi
  # Cached by the content of the module, so a bump rebuilds.
  local key; key=$(cat "$mod/go.mod" "$mod/go.sum" "$mod/main.go" | sha256sum | cut -c1-12)
  local out="$CACHE/kube-api-linter-$key"
  if [ ! -x "$out" ]; then
    log "building kube-api-linter (golangci-lint $GOLANGCI_LINT_VERSION + plugin)"
    (cd "$mod" && go build -o "$out.tmp" .)
    mv "$out.tmp" "$out"
  fi
  link "$out" kube-api-linter
}

prometheus() {
  if ! type -P promtool >/dev/null 2>&1 || ! type -P prometheus >/dev/null 2>&1; then apt_install prometheus; fi
  # The Debian package starts a system Prometheus on :9090; tests run their
  # own on free ports, so stop the packaged one to keep :9090 free.
  if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi
  link "$(type -P promtool)" promtool
  link "$(type -P prometheus)" prometheus
}

prometheus_operator() {
  # prometheus-operator, its config reloader and the Prometheus its release
  # is built against, for `make e2e-cluster`, with the CRDs and RBAC examples
  # of the release, in one cached directory that bin/prometheus-operator
  # links to:
  #   operator, prometheus-config-reloader, prometheus, crd/, rbac/prometheus-operator/, rbac/prometheus/
  # `go install ...@version` refuses both modules (their go.mod files have
  # replace directives), so, like the Kubernetes components, a throwaway
  # module requires the operator and points its pkg/apis/monitoring and
  # pkg/client at their releases of the same version.
  # Why not Debian's prometheus (2.42, which `make e2e-prometheus` uses): it
  # is built without Kubernetes service discovery, and the config the
  # operator renders fails to load ("field kubernetes_sd_configs not found
  # in type config.ScrapeConfig").
  local v=$PROMETHEUS_OPERATOR_VERSION mod=github.com/prometheus-operator/prometheus-operator
  local out="$CACHE/prometheus-operator-$v"
  if [ ! -x "$out/prometheus" ]; then
    log "building prometheus-operator $v and Prometheus from source (minutes, once per machine)"
    local dir; dir=$(mktemp -d)
    printf 'module pobuild\ngo 1.26\nrequire %s %s\nreplace %s/pkg/apis/monitoring => %s/pkg/apis/monitoring %s\nreplace %s/pkg/client => %s/pkg/client %s\n' \
      "$mod" "$v" "$mod" "$mod" "$v" "$mod" "$mod" "$v" >"$dir/go.mod"
    rm -rf "$out.tmp" && mkdir -p "$out.tmp/rbac"
    local src c
    src=$(cd "$dir" && go mod download -json "$mod@$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    for c in operator prometheus-config-reloader; do
      (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -ldflags "-s -w" -o "$out.tmp/$c" "$mod/cmd/$c") || {
        log "prometheus-operator $c build failed (work dir $dir)"; return 1; }
    done
    # Prometheus 3.x is the Go module v0.3MM.P: 3.MM.P. Only the
    # Kubernetes, file and HTTP service discoveries are compiled in (the
    # release's build tags), which saves most of the build.
    local pm; pm=$(sed -n 's/^\s*github.com\/prometheus\/prometheus \(v0\.[0-9]*\.[0-9]*\)$/\1/p' "$src/go.mod")
    local pv=${pm#v0.}; pv="${pv:0:1}.$((10#${pv:1:2})).${pv#*.}"
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -tags remove_all_sd,enable_kubernetes_sd \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=$pv" -o "$out.tmp/prometheus" github.com/prometheus/prometheus/cmd/prometheus) || {
      log "prometheus $pm build failed (work dir $dir)"; return 1; }
    cp -r "$src/example/prometheus-operator-crd" "$out.tmp/crd"
    cp -r "$src/example/rbac/prometheus-operator" "$src/example/rbac/prometheus" "$out.tmp/rbac/"
    chmod -R u+w "$out.tmp"
    rm -rf "$dir" "$out" && mv "$out.tmp" "$out"
  fi
  ln -sfn "$out" "$BIN/prometheus-operator"
}

postgres() {
  # Tests and `make dev` start throwaway clusters from the server binaries.
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then apt_install postgresql; fi
  # The package may start a system cluster on :5432; ours use free ports, so
  # it is left alone.
}

node() {
  if ! type -P node >/dev/null 2>&1 || ! type -P npm >/dev/null 2>&1; then apt_install nodejs npm; fi
}

chromium() {
  if ! type -P chromium >/dev/null 2>&1; then apt_install chromium; fi
  link "$(type -P chromium)" chromium
}

[ $# -eq 0 ] && set -- all
for t in "$@"; do
  case "$t" in
    etcd) etcd ;;
    kube-apiserver) kube_apiserver ;;
    helm) helm ;;
    controller-gen) controller_gen ;;
    golangci-lint) golangci_lint ;;
    kube-api-linter) kube_api_linter ;;
    prometheus) prometheus ;;
    chromium) chromium ;;
    postgres) postgres ;;
    node) node ;;
    envtest) etcd; kube_apiserver ;;
    cluster) cluster ;;
    kubelet|kube-controller-manager|kube-scheduler|kube-proxy|kubectl) kube_component "$t" ;;
    prometheus-operator) prometheus_operator ;;
    all) postgres; node; etcd; kube_apiserver; helm; controller_gen; golangci_lint; kube_api_linter; prometheus; chromium ;;
    *) log "unknown tool $t"; exit 2 ;;
  esac
done
