#!/usr/bin/env bash
# A single-node Kubernetes cluster on this machine, from real parts: its own
# containerd, etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet and kube-proxy (v1.36.3, built by hack/tools.sh cluster) and the CNI
# bridge plugin. Nothing leaves the machine:
#
#   host address  198.18.255.1 on a port-less bridge (API server, kubelet, and
#                 services on the host that pods reach: PostgreSQL, BetterAuth)
#   pods          198.18.0.0/16 (this node: 198.18.0.0/24, on the CNI bridge)
#   Services      198.19.0.0/16, routed to the host bridge
#   guards        `blackhole 198.18.0.0/15` so unknown lab addresses never take
#                 the default route, and a mangle FORWARD rule dropping anything
#                 from the pod range to an address outside 198.18.0.0/15
#                 (mangle, because kube-proxy inserts ACCEPTs above anything in
#                 filter FORWARD).
#
# Usage: hack/cluster.sh up|down|status
#   up      starts everything (refuses when a cluster is already up), waits
#           (bounded) for the node Ready and the default ServiceAccount, and
#           writes $CLUSTER_DIR/kubeconfig.
#   down    stops every process by PID (SIGTERM, SIGKILL after a bound), unmounts,
#           removes the interfaces, routes and iptables rules it made, then
#           verifies nothing is left.
#   status  what runs.
#
# Root only (network namespaces, iptables, cgroups). State lives in CLUSTER_DIR
# (default /tmp/chatbackend-cluster); the pause image is built by hack/image.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/bin"
DIR=${CLUSTER_DIR:-/tmp/chatbackend-cluster}
NODE=${CLUSTER_NODE_NAME:-chatbackend-node}
HOST_IP=198.18.255.1
HOST_BRIDGE=cbhost0
CNI_BRIDGE=cbcni0
POD_CIDR=198.18.0.0/16
NODE_POD_CIDR=198.18.0.0/24
SERVICE_CIDR=198.19.0.0/16
LAB_CIDR=198.18.0.0/15
API_SERVICE_IP=198.19.0.1
DNS_SERVICE_IP=198.19.0.10
PAUSE_IMAGE=localhost/chatbackend/pause:v1
EGRESS_CHAIN=CHATBACKEND-EGRESS
CTR_SOCK="$DIR/containerd/containerd.sock"
PROCS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

say() { printf '\033[1mcluster:\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

phase_start=0
phase() { # $1 name: ends the previous phase (printing its time), starts the next
  local now; now=$(date +%s.%N)
  if [ -n "${phase_name:-}" ]; then say "$(printf '%-28s %6.1fs' "$phase_name" "$(awk -v a="$now" -v b="$phase_start" 'BEGIN{print a-b}')")"; fi
  phase_name=${1:-} phase_start=$now
}

pid_of() { [ -f "$DIR/pids/$1" ] && cat "$DIR/pids/$1"; }
running() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# wait_until SECONDS WHAT CMD...: bounded poll, 0.2 s apart.
wait_until() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || die "$what not ready after ${secs}s (logs in $DIR/logs)"
    sleep 0.2
  done
}

start() { # $1 name, rest: command. Logs to $DIR/logs/NAME.log, PID to $DIR/pids/NAME.
  local name=$1; shift
  "$@" >"$DIR/logs/$name.log" 2>&1 &
  echo $! >"$DIR/pids/$name"
}

kc() { "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" "$@"; }
pod_cidr() { local c; c=$(kc get node "$NODE" -o jsonpath='{.spec.podCIDR}') && [ -n "$c" ] && echo "$c"; }

# --- certificates ---------------------------------------------------------------
cert() { # $1 name, $2 subject, $3 extensions (subjectAltName=... or "")
  local d="$DIR/pki" ext
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/$1.key" -subj "$2" -out "$d/$1.csr" 2>/dev/null
  ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth"
  if [ -n "$3" ]; then ext+=$'\n'"$3"; fi
  openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 7 \
    -extfile <(echo "$ext") -out "$d/$1.crt" 2>/dev/null
  rm -f "$d/$1.csr"
}

kubeconfig() { # $1 file, $2 cert name
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: chatbackend
  cluster: {server: "https://$HOST_IP:6443", certificate-authority: "$DIR/pki/ca.crt"}
users:
- name: $2
  user: {client-certificate: "$DIR/pki/$2.crt", client-key: "$DIR/pki/$2.key"}
contexts:
- name: chatbackend
  context: {cluster: chatbackend, user: $2, namespace: default}
current-context: chatbackend
EOF
}

make_pki() {
  local d="$DIR/pki"
  mkdir -p "$d"
  # P-256 keys: RSA key generation took ~25 s on a busy 2-core machine.
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/ca.key" -subj "/CN=chatbackend-cluster-ca" -days 7 -out "$d/ca.crt" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:$HOST_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=chatbackend-admin" ""
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" ""
  cert controller-manager "/CN=system:kube-controller-manager" ""
  cert scheduler "/CN=system:kube-scheduler" ""
  cert proxy "/CN=system:kube-proxy" ""
  cert node "/O=system:nodes/CN=system:node:$NODE" ""
  cert kubelet-serving "/CN=$NODE" "subjectAltName=IP:$HOST_IP,DNS:$NODE"
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/sa.key" 2>/dev/null
  openssl ec -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  kubeconfig "$DIR/kubeconfig" admin
  local c
  for c in controller-manager scheduler proxy node; do kubeconfig "$DIR/$c.kubeconfig" "$c"; done
}

# --- network ----------------------------------------------------------------------
sysctl_set() { # $1 key path under /proc/sys, $2 value; remembers the old value for down
  local f="/proc/sys/$1" old
  old=$(cat "$f")
  [ "$old" = "$2" ] && return 0
  echo "$1 $old" >>"$DIR/sysctl.restore"
  echo "$2" >"$f"
}

net_up() {
  ip link add "$HOST_BRIDGE" type bridge
  ip addr add "$HOST_IP/32" dev "$HOST_BRIDGE"
  ip link set "$HOST_BRIDGE" up
  ip route add "$SERVICE_CIDR" dev "$HOST_BRIDGE" src "$HOST_IP"
  ip route add blackhole "$LAB_CIDR"
  iptables -w -t mangle -N "$EGRESS_CHAIN"
  iptables -w -t mangle -A "$EGRESS_CHAIN" -s "$POD_CIDR" ! -d "$LAB_CIDR" -m comment --comment "chatbackend cluster: pods never leave the machine" -j DROP
  iptables -w -t mangle -I FORWARD 1 -j "$EGRESS_CHAIN"
  # Pod-to-Service traffic whose endpoint sits on the same bridge must pass
  # through iptables for kube-proxy's DNAT to be undone on the reply.
  sysctl_set net/ipv4/ip_forward 1
  sysctl_set net/bridge/bridge-nf-call-iptables 1
  mkdir -p "$DIR/cni/net.d" "$DIR/cni/ipam"
  cat >"$DIR/cni/net.d/10-chatbackend.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "chatbackend",
  "plugins": [
    {"type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$DIR/cni/ipam",
              "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "${NODE_POD_CIDR%.0/24}.1"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# --- up -------------------------------------------------------------------------------
up() {
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces, iptables, cgroups)"
  local p
  for p in kubelet kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl etcd; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing: run 'hack/tools.sh cluster'"
  done
  if [ -d "$DIR" ] || ip link show "$HOST_BRIDGE" >/dev/null 2>&1; then
    die "a cluster (or what is left of one) exists in $DIR: run 'hack/cluster.sh down' first"
  fi
  local t0=$SECONDS
  mkdir -p "$DIR"/{logs,pids,containerd,kubelet,pod-logs}
  # Any failure (die included) tears down what was started.
  trap 'rc=$?; trap - EXIT; if [ $rc != 0 ]; then say "up failed; tearing down"; down; fi; exit $rc' EXIT

  phase "certificates"
  make_pki

  phase "network"
  net_up
  echo "# no upstream resolver: nothing leaves the machine" >"$DIR/resolv.conf"

  phase "pause image"
  (cd "$ROOT" && go run ./hack/image pause --tag "$PAUSE_IMAGE" --out "$DIR/pause.tar")

  phase "containerd"
  cat >"$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$CTR_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The VM withholds CAP_SYS_RESOURCE: without this every sandbox fails
  # ("can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  # Network namespaces under our state, so down finds and removes them all.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
EOF
  start containerd containerd --config "$DIR/containerd/config.toml"
  wait_until 30 containerd ctr --address "$CTR_SOCK" version
  ctr --address "$CTR_SOCK" -n k8s.io images import --no-unpack=false "$DIR/pause.tar" >/dev/null
  # Pinned: the kubelet's image GC would otherwise remove the sandbox image.
  ctr --address "$CTR_SOCK" -n k8s.io images label "$PAUSE_IMAGE" io.cri-containerd.pinned=pinned >/dev/null

  phase "etcd"
  start etcd "$BIN/etcd" --name chatbackend --data-dir "$DIR/etcd" \
    --listen-client-urls "http://$HOST_IP:2379" --advertise-client-urls "http://$HOST_IP:2379" \
    --listen-peer-urls "http://$HOST_IP:2380" --initial-advertise-peer-urls "http://$HOST_IP:2380" \
    --initial-cluster "chatbackend=http://$HOST_IP:2380"
  wait_until 30 etcd curl -fsS "http://$HOST_IP:2379/health"

  phase "kube-apiserver"
  local pki="$DIR/pki"
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://$HOST_IP:2379" \
    --bind-address "$HOST_IP" --advertise-address "$HOST_IP" --secure-port 6443 \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction --allow-privileged
  wait_until 60 kube-apiserver kc get --raw /readyz

  phase "controller-manager, scheduler"
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$DIR/controller-manager.kubeconfig" --authorization-kubeconfig "$DIR/controller-manager.kubeconfig" \
    --bind-address "$HOST_IP" --leader-elect=false --use-service-account-credentials \
    --allocate-node-cidrs --cluster-cidr "$POD_CIDR" --node-cidr-mask-size 24 --service-cluster-ip-range "$SERVICE_CIDR" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key"
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$DIR/scheduler.kubeconfig" --authorization-kubeconfig "$DIR/scheduler.kubeconfig" \
    --bind-address "$HOST_IP" --leader-elect=false

  phase "kubelet"
  cat >"$DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $HOST_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: $HOST_IP
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$pki/kubelet-serving.crt"
tlsPrivateKeyFile: "$pki/kubelet-serving.key"
containerRuntimeEndpoint: "unix://$CTR_SOCK"
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
resolvConf: "$DIR/resolv.conf"
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: cluster.local
podLogsDir: "$DIR/pod-logs"
# Locally imported images cannot be pulled again: keep them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
EOF
  start kubelet "$BIN/kubelet" --config "$DIR/kubelet/config.yaml" --kubeconfig "$DIR/node.kubeconfig" \
    --root-dir "$DIR/kubelet" --hostname-override "$NODE" --node-ip "$HOST_IP"

  phase "kube-proxy"
  mkdir -p "$DIR/kube-proxy"
  cat >"$DIR/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$DIR/proxy.kubeconfig"}
hostnameOverride: $NODE
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: $HOST_IP
healthzBindAddress: "$HOST_IP:10256"
metricsBindAddress: "$HOST_IP:10249"
nodePortAddresses: ["$HOST_IP/32"]
# Left alone: the VM does not let kube-proxy write the conntrack sysctls.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start kube-proxy "$BIN/kube-proxy" --config "$DIR/kube-proxy/config.yaml"

  phase "node Ready"
  wait_until 90 "node $NODE" kc wait --for=condition=Ready "node/$NODE" --timeout=2s
  # The controller-manager assigns the podCIDR shortly after the node registers.
  wait_until 30 "podCIDR of node $NODE" pod_cidr
  local cidr; cidr=$(pod_cidr)
  [ "$cidr" = "$NODE_POD_CIDR" ] || die "node podCIDR is $cidr, the CNI config expects $NODE_POD_CIDR"

  phase "default ServiceAccount"
  wait_until 60 "default ServiceAccount" kc get serviceaccount default -n default
  phase
  trap - EXIT
  say "up in $((SECONDS - t0))s; export KUBECONFIG=$DIR/kubeconfig"
  say "containerd: ctr --address $CTR_SOCK -n k8s.io ..."
}

# --- down -----------------------------------------------------------------------------
stop_pid() { # $1 name; SIGTERM, then SIGKILL after 15 s
  local p; p=$(pid_of "$1") || return 0
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  say "$1 ($p) did not stop within 15s; SIGKILL"
  kill -KILL "$p" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
}

# Shims (and the containers under them) outlive containerd; ours carry our
# socket's path on their command line.
our_shims() {
  local f
  for f in $(grep -alsF -- "$CTR_SOCK" /proc/[0-9]*/cmdline); do
    if grep -aqF containerd-shim "$f" 2>/dev/null; then f=${f#/proc/}; echo "${f%/cmdline}"; fi
  done
  return 0
}

# remove_chains IPTABLES REGEX: deletes the rules that jump to chains whose
# names match REGEX, then the chains themselves, in every table. The chains
# are the kube-proxy's and kubelet's (KUBE-*), portmap's (CNI-*) and ours.
remove_chains() {
  local ipt=$1 re=$2 t rule chain
  for t in filter nat mangle raw; do
    "$ipt-save" -t "$t" 2>/dev/null | grep -E -- "^-A .* -j ($re)" | grep -vE -- "^-A ($re)" | sed 's/^-A/-D/' |
      while read -r rule; do eval "$ipt -w -t $t $rule" 2>/dev/null || true; done || true
    for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\([^ ]*\) .*/\1/p' | grep -E "^($re)"); do
      "$ipt" -w -t "$t" -F "$chain" 2>/dev/null || true
    done
    for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\([^ ]*\) .*/\1/p' | grep -E "^($re)"); do
      "$ipt" -w -t "$t" -X "$chain" 2>/dev/null || true
    done
  done
}

down() {
  local t0=$SECONDS n
  phase "stop control plane, kubelet"
  for n in kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver; do stop_pid "$n"; done

  phase "stop containers"
  if running containerd; then
    local c ctr=(ctr --address "$CTR_SOCK" -n k8s.io)
    for c in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
    for c in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      for _ in $(seq 50); do "${ctr[@]}" tasks delete "$c" >/dev/null 2>&1 && break; sleep 0.1; done
    done
  fi
  stop_pid containerd
  for n in $(our_shims); do kill -KILL "$n" 2>/dev/null || true; done
  stop_pid etcd

  phase "iptables (kube-proxy's, the kubelet's, ours)"
  while iptables -w -t mangle -D FORWARD -j "$EGRESS_CHAIN" 2>/dev/null; do :; done
  local ipt
  for ipt in iptables ip6tables; do remove_chains "$ipt" "KUBE-|CNI-|$EGRESS_CHAIN"; done

  phase "mounts, network namespaces"
  if [ -d "$DIR" ]; then
    local m
    # Deepest first.
    for m in $(findmnt -rn -o TARGET | grep -F "$DIR/" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  fi

  phase "interfaces, routes, sysctls"
  ip route del blackhole "$LAB_CIDR" 2>/dev/null || true
  ip route del "$SERVICE_CIDR" dev "$HOST_BRIDGE" 2>/dev/null || true
  ip link del "$CNI_BRIDGE" 2>/dev/null || true
  ip link del "$HOST_BRIDGE" 2>/dev/null || true
  if [ -f "$DIR/sysctl.restore" ]; then
    local key val
    while read -r key val; do echo "$val" >"/proc/sys/$key"; done <"$DIR/sysctl.restore"
  fi

  phase "cgroups"
  # The kubelet's cgroupfs hierarchy (kubepods) under every v1 controller.
  local cg
  for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
    [ -d "$cg" ] || continue
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done

  phase "state directory"
  if [ -d "$DIR" ] && [ -n "${CLUSTER_KEEP_LOGS:-}" ]; then
    mkdir -p "$CLUSTER_KEEP_LOGS" && cp -r "$DIR/logs/." "$CLUSTER_KEEP_LOGS/" 2>/dev/null || true
  fi
  rm -rf "$DIR"
  phase
  say "down in $((SECONDS - t0))s"
  verify_gone
}

# Fails (and says what) when anything of ours is still there.
verify_gone() {
  local left=()
  [ -n "$(our_shims)" ] && left+=("containerd shims")
  ip link show "$HOST_BRIDGE" >/dev/null 2>&1 && left+=("interface $HOST_BRIDGE")
  ip link show "$CNI_BRIDGE" >/dev/null 2>&1 && left+=("interface $CNI_BRIDGE")
  ip route show | grep -qE "198\.1[89]\." && left+=("routes to 198.18.0.0/15")
  { iptables-save; ip6tables-save; } 2>/dev/null | grep -qE "$EGRESS_CHAIN|KUBE-|CNI-" && left+=("iptables rules")
  findmnt -rn -o TARGET | grep -qF "$DIR" && left+=("mounts under $DIR")
  [ -e "$DIR" ] && left+=("$DIR")
  if [ ${#left[@]} -gt 0 ]; then die "left behind: ${left[*]}"; fi
  say "verified: no process, interface, route, iptables rule, mount or file of the cluster is left"
}

status() {
  if [ ! -d "$DIR" ]; then say "no cluster in $DIR"; return 0; fi
  local n
  for n in "${PROCS[@]}"; do
    if running "$n"; then printf '  %-24s running (pid %s)\n' "$n" "$(pid_of "$n")"; else printf '  %-24s not running\n' "$n"; fi
  done
  if running kube-apiserver; then kc get nodes -o wide 2>/dev/null || true; kc get pods -A 2>/dev/null || true; fi
  echo "  KUBECONFIG=$DIR/kubeconfig"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
