# Shared by the kernel lab scenarios anycast.sh, vlan.sh and install.sh;
# sourced, not run. It builds Seesaw nodes, backends, clients and FRR bgpd
# daemons as network namespaces on one bridged segment inside the VM.
#
# The sourcing script sets, before calling anything here:
#   bin     directory of the Seesaw binaries
#   lab     a fresh directory for the nodes' files and logs
#   prefix  the prefix of every namespace name, unique to the scenario
#   net     the segment's IPv4 network without the last octet, a /24
#
# Host tools reached through /etc/alternatives (awk, iptables) do not exist
# in the guest, so only bash, coreutils, grep, sed, iproute2, python3 and
# the FRR programs are used.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
segment=${prefix}seg
bgpd=/usr/lib/frr/bgpd

step() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }

fail() {
  printf '\nFAILED: %s\n' "$*" >&2
  local log
  for log in "$lab"/*/log/*.INFO "$lab"/*/watchdog.out "$lab"/*/frr/bgpd.log; do
    [[ -f $log ]] || continue
    printf '\n--- %s (last 40 lines)\n' "${log#"$lab"/}" >&2
    tail -n 40 "$log" >&2
  done
  exit 1
}

cleanup() {
  set +e
  local ns pid
  for ns in $(ip netns list | cut -d' ' -f1 | grep "^$prefix"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  # SEESAW_LAB_LOGS names a directory shared with the host (`cargo xtask
  # vm -w DIR`) that keeps the nodes' files and logs.
  # Sockets cannot be copied there, which cp reports.
  [[ -n ${SEESAW_LAB_LOGS:-} ]] && cp -r "$lab" "$SEESAW_LAB_LOGS/" 2>/dev/null
  rm -rf "$lab"
}

# now: seconds since the epoch with microseconds, for measured times.
now() { printf '%s' "$EPOCHREALTIME"; }
# seconds_since START: the time since START (from `now`), to 0.1 s.
seconds_since() { python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$1"; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${seconds}s waiting for $what"
    sleep 0.2
  done
}

# stays SECONDS DESCRIPTION COMMAND...: fails as soon as COMMAND fails
# within SECONDS, for a state that must stay as it is.
stays() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    "$@" >/dev/null 2>&1 || fail "$what changed within ${seconds}s"
    sleep 0.5
  done
}

make_segment() {
  ip netns add "$segment"
  ip -n "$segment" link add br0 type bridge
  ip -n "$segment" link set br0 up
}

# plug NAMESPACE INTERFACE PORT: a veth pair from INTERFACE in NAMESPACE to
# the bridge, whose end there is named PORT.
plug() {
  ip link add "$2" netns "$1" type veth peer name "$3" netns "$segment"
  ip -n "$segment" link set "$3" master br0 up
  ip -n "$1" link set "$2" up
}

# add_host NAME ADDRESS/LENGTH: a namespace with eth0 on the segment.
add_host() {
  local ns=$prefix$1
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  plug "$ns" eth0 "$1"
  ip -n "$ns" addr add "$2" dev eth0
}

# add_vlan_link NAME ID ADDRESS/LENGTH: eth0.ID on host NAME's eth0.
add_vlan_link() {
  local ns=$prefix$1
  ip -n "$ns" link add link eth0 name "eth0.$2" type vlan id "$2"
  ip -n "$ns" addr add "$3" dev "eth0.$2"
  ip -n "$ns" link set "eth0.$2" up
}

# add_node NAME ADDRESS: a Seesaw node with ens192 (node interface, with
# ADDRESS/24) and ens224 (LB interface) on the segment, and a default
# route to .1.
add_node() {
  local ns=$prefix$1
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  plug "$ns" ens192 "$1-ens192"
  plug "$ns" ens224 "$1-ens224"
  ip -n "$ns" addr add "$2/24" dev ens192
  ip -n "$ns" route add default via "$net.1"
}

# hold_vips NAME VIP...: backend NAME accepts traffic for each VIP (DSR)
# without answering ARP for it.
hold_vips() {
  local ns=$prefix$1 vip
  shift
  for vip in "$@"; do ip -n "$ns" addr add "$vip/32" dev lo; done
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
}

# start_web NAME: an HTTP server on port 80 of backend NAME that replies
# with NAME; its PID goes to $lab/NAME.web.pid.
start_web() {
  [[ -f $lab/web.py ]] || cat >"$lab/web.py" <<'PY'
import http.server, sys
name = sys.argv[1]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # probes that close early are expected
Server(("", 80), Handler).serve_forever()
PY
  ip netns exec "$prefix$1" python3 "$lab/web.py" "$1" &
  # Stopped on purpose later; disowned so that bash does not report it.
  disown
  echo $! >"$lab/$1.web.pid"
  wait_for 30 "the HTTP server of $1" ip netns exec "$prefix$1" python3 -c \
    "import socket; socket.create_connection(('127.0.0.1', 80), timeout=1)"
}

stop_web() { kill "$(cat "$lab/$1.web.pid")"; }

# probe HOST URL: the body that URL returns to host HOST, or a failure.
probe() {
  ip netns exec "$prefix$1" python3 - "$2" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as reply:
    print(reply.read().decode().strip())
PY
}

# start_bgpd NAME NAMESPACE CONFIG: FRR's bgpd in NAMESPACE, without
# zebra (-Z), without the TCP vty (-P 0) and as root (-S), with its vty
# socket, PID file and log in $lab/NAME/frr. Waits until its vty answers.
start_bgpd() {
  local dir=$lab/$1/frr
  mkdir -p "$dir"
  printf '%s\n' "$3" >"$dir/bgpd.conf"
  # Unless vtysh.conf lets root in without a password, vtysh checks with
  # PAM, which the guest has no configuration for.
  echo "username root nopassword" >"$dir/vtysh.conf"
  ip netns exec "$2" "$bgpd" -S -Z -P 0 -f "$dir/bgpd.conf" -i "$dir/bgpd.pid" \
    --vty_socket "$dir" --log "file:$dir/bgpd.log" >"$dir/output.log" 2>&1 &
  disown
  wait_for 30 "bgpd of $1 to answer on its vty" vty "$1" "show version"
}

# vty NAME COMMAND: runs COMMAND in the bgpd of NAME through vtysh.
vty() {
  local dir=$lab/$1/frr
  vtysh --config_dir "$dir" --vty_socket "$dir" -d bgpd -c "$2"
}

# cluster_head CLUSTER_VIP NODE_IP...: the start of a cluster.pb in
# protobuf text format: the cluster VIP and the nodes n1, n2, ... with
# their addresses, all in one /24.
cluster_head() {
  printf 'seesaw_vip: <\n  fqdn: "seesaw-vip.lab."\n  ipv4: "%s/24"\n  status: PRODUCTION\n>\n' "$1"
  shift
  local index=0 ip
  for ip in "$@"; do
    index=$((index + 1))
    printf 'node: <\n  fqdn: "n%s.lab."\n  ipv4: "%s/24"\n>\n' "$index" "$ip"
  done
}

# vserver_pb NAME VIP INTERVAL FQDN=IP...: a vserver of cluster.pb with
# one HTTP entry on port 80 in DSR mode, checked every INTERVAL seconds
# with a GET of /, and a backend for each FQDN=IP.
vserver_pb() {
  local name=$1 vip=$2 interval=$3 backend
  shift 3
  cat <<PB
vserver: <
  name: "$name"
  entry_address: <
    fqdn: "$name.lab."
    ipv4: "$vip/32"
  >
  rp: "ops@example.com"
  vserver_entry: <
    protocol: TCP
    port: 80
    scheduler: RR
    mode: DSR
    healthcheck: <
      type: HTTP
      port: 80
      interval: $interval
      timeout: 2
      mode: PLAIN
      send: "/"
      tls_verify: false
    >
  >
PB
  for backend in "$@"; do
    printf '  backend: <\n    host: <\n      fqdn: "%s"\n      ipv4: "%s/32"\n    >\n  >\n' \
      "${backend%=*}" "${backend#*=}"
  done
  printf '>\n'
}

# seesaw_cfg NAME NODE_IP PEER_IP CLUSTER_VIP VRID ANYCAST: a seesaw.cfg
# with ens192 as the node interface and ens224 as the LB interface;
# ANYCAST is true or false.
seesaw_cfg() {
  cat <<CFG
[cluster]
anycast_enabled = $6
name = $1
node_ipv4 = $2
peer_ipv4 = $3
vip_ipv4 = $4
vrid = $5

[config_server]
primary = 127.0.0.1

[interface]
node = ens192
lb = ens224
CFG
}

# start_node NODE SEESAW_CFG CLUSTER_PB [NCC_FLAGS]: seesaw_watchdog with
# the node's own files, as an operator runs it; NCC_FLAGS are added to
# seesaw_ncc's arguments in watchdog.cfg.
start_node() {
  local node=$1 dir=$lab/$1
  mkdir -p "$dir/etc" "$dir/run" "$dir/log"
  cp "$2" "$dir/etc/seesaw.cfg"
  cp "$3" "$dir/etc/cluster.pb"
  sed "/^binary = .*seesaw_ncc$/{n;s|^args = .*|& ${4:-}|}" "$repo/etc/watchdog.cfg" >"$dir/etc/watchdog.cfg"
  # SEESAW_LAB_VERBOSITY sets -v of every daemon, for debugging.
  [[ -n ${SEESAW_LAB_VERBOSITY:-} ]] &&
    sed -i "s|^args = .*|& -v=$SEESAW_LAB_VERBOSITY|" "$dir/etc/watchdog.cfg"
  # A private mount namespace gives each node its own /etc/seesaw,
  # /var/run/seesaw, /var/log/seesaw and /usr/local/seesaw.
  ip netns exec "$prefix$node" unshare --mount --propagation private bash -c "
    mkdir -p /etc/seesaw /var/run/seesaw /var/log/seesaw
    # /usr is read-only in the lab: a tmpfs makes room for the mount point.
    mount -t tmpfs lab-local /usr/local
    mkdir /usr/local/seesaw
    mount --bind '$dir/etc' /etc/seesaw
    mount --bind '$dir/run' /var/run/seesaw
    mount --bind '$dir/log' /var/log/seesaw
    mount --bind '$bin' /usr/local/seesaw
    exec /usr/local/seesaw/seesaw_watchdog -config /etc/seesaw/watchdog.cfg
  " >"$dir/watchdog.out" 2>&1 &
  disown
  echo $! >"$dir/watchdog.pid"
}

# stop_node NODE: SIGTERM to the node's watchdog, which stops every daemon
# in reverse dependency order; waits until it has exited.
stop_node() {
  local pid
  pid=$(cat "$lab/$1/watchdog.pid")
  kill -TERM "$pid"
  wait_for 60 "the watchdog of $1 to exit" bash -c "! kill -0 $pid"
}

# cli NODE COMMAND: the seesaw shell of NODE, on its private engine socket.
cli() {
  ip netns exec "$prefix$1" "$bin/seesaw_cli" -engine "$lab/$1/run/engine/engine.sock" -c "$2"
}

ha_state() { cli "$1" "show ha" 2>/dev/null | sed -n 's/^ *State: *\([A-Z]*\).*/\1/p'; }
is_state() { [[ $(ha_state "$1") == "$2" ]]; }

# pid_of NODE PROGRAM
pid_of() {
  local pid
  for pid in $(ip netns pids "$prefix$1"); do
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]; then echo "$pid"; fi
  done
}

# ipvs_has NODE ADDRESS:PORT: whether IPVS on NODE has that service.
ipvs_has() { ip netns exec "$prefix$1" ipvsadm -Ln | grep -q " $2 "; }
