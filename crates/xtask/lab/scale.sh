#!/bin/bash
# Cold start at scale, inside the kernel lab as root: one Seesaw node of the
# GKE sample pair serving N generated vservers, from the start of
# seesaw_watchdog until every vserver's service is in IPVS. Each vserver
# has its own VIP in a dedicated VIP subnet and the seven backends of the
# sample, all checked by one shared HTTP check each.
#
# Usage: scale.sh BIN_DIR NODE_CFG N [N...]
# Prints one line per N: "scale N=<n> seconds=<s>". With SCALE_VERBOSE set,
# also the start of the daemons' logs; with SCALE_KEEP_LOGS=DIR, copies the
# INFO logs of each run to DIR/<n>-<run>/.
set -euo pipefail

bin=$(cd "$1" && pwd)
node_cfg=$(realpath "$2")
shift 2
repo=$(cd "$(dirname "$0")/../../.." && pwd)
lab=$(mktemp -d /tmp/seesaw-scale.XXXXXX)
net=100.115.222
backends=(163 164 165 166 167 168 169)

cleanup() {
  set +e
  for ns in $(ip netns list | cut -d' ' -f1 | grep '^scale-'); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$lab"
}
trap cleanup EXIT

fail() {
  printf 'FAILED: %s\n' "$*" >&2
  for f in "$lab"/log/seesaw_engine.INFO "$lab"/log/seesaw_healthcheck.INFO "$lab"/log/seesaw_ncc.WARNING "$lab"/watchdog.out; do echo "--- $f" >&2; grep -v sysctl "$f" | tail -n 15 >&2 || true; done
  exit 1
}

modprobe ip_vs 2>/dev/null || true
ip netns add scale-seg
ip -n scale-seg link add br0 type bridge
ip -n scale-seg link set br0 up
attach() { # attach NS IFNAME PEER
  ip link add "$2" netns "$1" type veth peer name "$3" netns scale-seg
  ip -n scale-seg link set "$3" master br0 up
  ip -n "$1" link set lo up
  ip -n "$1" link set "$2" up
}

cat >"$lab/backend.py" <<'PY'
import http.server
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 10256), Handler).serve_forever()
PY
for b in "${backends[@]}"; do
  ip netns add "scale-b$b"
  attach "scale-b$b" eth0 "b$b"
  ip -n "scale-b$b" addr add "$net.$b/25" dev eth0
  ip netns exec "scale-b$b" python3 "$lab/backend.py" &
done

# node_namespace: a fresh node, so that every run is a cold start with no
# LB interface, chains or VIPs left by the run before.
node_namespace() {
  if ip netns list | grep -q '^scale-n1\b'; then
    for pid in $(ip netns pids scale-n1); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del scale-n1
  fi
  ip netns add scale-n1
  attach scale-n1 ens192 n1-ens192
  attach scale-n1 ens224 n1-ens224
  ip -n scale-n1 addr add "$net.130/25" dev ens192
  # The NCC copies the default route into the LB routing table.
  ip -n scale-n1 route add default via "$net.129"
}

# cluster N: the sample's nodes and N vservers on 10.200.0.0/16.
cluster() {
  local n=$1 i
  cat <<EOF
seesaw_vip: < fqdn: "seesaw-vip." ipv4: "$net.132/25" status: PRODUCTION >
node: < fqdn: "node.$net.130." ipv4: "$net.130/25" >
node: < fqdn: "node.$net.131." ipv4: "$net.131/25" >
dedicated_vip_subnet: "10.200.0.0/16"
EOF
  for ((i = 0; i < n; i++)); do
    printf 'vserver: < name: "vs-%d" entry_address: < fqdn: "vs-%d." ipv4: "10.200.%d.%d/32" > rp: "ops@example.com"\n' \
      "$i" "$i" $((i / 250)) $((i % 250 + 1))
    printf '  vserver_entry: < protocol: TCP port: 443 scheduler: WLC mode: DSR healthcheck: < type: HTTP port: 10256 mode: PLAIN send: "/healthz" > >\n'
    for b in "${backends[@]:0:4}"; do
      printf '  backend: < host: < fqdn: "b%d." ipv4: "%s.%d/32" > >\n' "$b" "$net" "$b"
    done
    printf '>\n'
  done
}

services() { ip netns exec scale-n1 ipvsadm -Ln | grep -c '^TCP' || true; }

for n in "$@"; do
  rm -rf "$lab/etc" "$lab/run" "$lab/log"
  mkdir -p "$lab/etc" "$lab/run" "$lab/log"
  cp "$node_cfg" "$lab/etc/seesaw.cfg"
  cluster "$n" >"$lab/etc/cluster.pb"
  cp "$repo/etc/watchdog.cfg" "$lab/etc/watchdog.cfg"
  node_namespace
  start=$(date +%s.%N)
  ip netns exec scale-n1 unshare --mount --propagation private bash -c "
    mkdir -p /etc/seesaw /var/run/seesaw /var/log/seesaw
    mount -t tmpfs scale-local /usr/local
    mkdir /usr/local/seesaw
    mount --bind '$lab/etc' /etc/seesaw
    mount --bind '$lab/run' /var/run/seesaw
    mount --bind '$lab/log' /var/log/seesaw
    mount --bind '$bin' /usr/local/seesaw
    exec /usr/local/seesaw/seesaw_watchdog -config /etc/seesaw/watchdog.cfg
  " >"$lab/watchdog.out" 2>&1 &
  watchdog=$!
  deadline=$((SECONDS + ${SCALE_DEADLINE:-600}))
  until [[ $(services) -ge $n ]]; do
    ((SECONDS < deadline)) || fail "only $(services) of $n services after ${SCALE_DEADLINE:-600} s"
    sleep 0.2
  done
  end=$(date +%s.%N)
  python3 -c "print(f\"scale N={$n} seconds={$end - $start:.2f}\")"
  if [[ -n ${SCALE_VERBOSE:-} ]]; then
    for f in seesaw_ncc.INFO seesaw_engine.INFO seesaw_healthcheck.INFO; do
      echo "--- $f"; grep -v sysctl "$lab/log/$f" | tail -n +6 | head -n 25
    done
  fi
  if [[ -n ${SCALE_KEEP_LOGS:-} ]]; then
    run=1
    while [[ -e $SCALE_KEEP_LOGS/$n-$run ]]; do run=$((run + 1)); done
    mkdir -p "$SCALE_KEEP_LOGS/$n-$run"
    cp -L "$lab"/log/*.INFO "$SCALE_KEEP_LOGS/$n-$run/" 2>/dev/null || true
  fi
  kill -TERM "$watchdog" 2>/dev/null || true
  wait "$watchdog" 2>/dev/null || true
  for pid in $(ip netns pids scale-n1); do kill -9 "$pid" 2>/dev/null || true; done
done
