#!/bin/bash
# The main job, inside the kernel lab as root: a Seesaw pair serving the
# GKE manual-mode sample cluster. Every host of the sample (two nodes, a
# gateway, seven backends and a client) is a network namespace on one
# bridged segment, so nothing here reaches outside the VM.
#
# Usage: pair.sh BIN_DIR CLUSTER NODE_CFG PEER_CFG [STEP...]
#   BIN_DIR   holds the seven release binaries
#   CLUSTER   the cluster.pb both nodes load
#   NODE_CFG  seesaw.cfg of node n1 (100.115.222.130)
#   PEER_CFG  seesaw.cfg of node n2 (100.115.222.131)
#   STEP      only these steps after the set-up (default: all but cycles):
#             show traffic restart reload config-change bad-config failover
#             rejoin unhealthy
#             cycles (SEESAW_LAB_CYCLES failovers, 10 by default, for the
#             benchmark)
#
# Each step checks its outcome and the script exits non-zero at the first
# failure, printing the node logs that explain it.
set -euo pipefail

bin=$(cd "$1" && pwd)
cluster_file=$(realpath "$2")
declare -A node_cfg=([n1]=$(realpath "$3") [n2]=$(realpath "$4"))
shift 4
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(show traffic restart reload config-change bad-config failover rejoin unhealthy)

repo=$(cd "$(dirname "$0")/../../.." && pwd)
lab=$(mktemp -d /tmp/seesaw-lab.XXXXXX)
segment=lab-seg
net=100.115.222
declare -A backend_ip=(
  [admin-1]=163 [admin-2]=164 [admin-3]=165 [admin-4]=166
  [user-1]=167 [user-2]=168 [user-3]=169
)
vips=(143 144 145 146)
services=("143:443" "144:80" "144:443" "145:80" "145:443" "146:443")
declare -A node_ip=([n1]=130 [n2]=131)

step() { printf '\n== %s\n' "$*"; }
say() { printf '   %s\n' "$*"; }

fail() {
  printf '\nFAILED: %s\n' "$*" >&2
  for node in n1 n2; do
    for log in "$lab/$node"/log/*.INFO "$lab/$node"/watchdog.out; do
      [[ -f $log ]] || continue
      printf '\n--- %s (last 40 lines)\n' "${log#"$lab"/}" >&2
      tail -n 40 "$log" >&2
    done
  done
  exit 1
}

cleanup() {
  set +e
  # Host tools reached through /etc/alternatives (awk, iptables) are not
  # there in the guest, so only coreutils, grep and sed are used.
  for ns in $(ip netns list | cut -d' ' -f1 | grep '^lab-'); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$lab"
}
trap cleanup EXIT

# check.py: the checks of the printed output against CLUSTER, which is
# read as the text format that cluster.pb uses.
#   check.py CLUSTER ipvs               ipvsadm -Ln on stdin: every service
#                                       of CLUSTER with all its backends
#   check.py CLUSTER vservers           show vservers on stdin
#   check.py CLUSTER vserver NAME       show vserver NAME on stdin
#   check.py CLUSTER destinations NAME  show destinations NAME on stdin
#   check.py CLUSTER traffic COUNT      the master's ipvsadm -Ln on stdin:
#       opens COUNT connections to each service, prints which backends
#       replied, and checks that each reply came from a destination of
#       that service and that a service with two or more destinations
#       reached at least two
cat >"$lab/check.py" <<'PY'
import collections, re, sys, urllib.request


def parse_cluster(path):
    """Returns the vservers of a cluster.pb as dicts: name, vip, entries
    (protocol, port) and backends (fqdn, ipv4)."""
    vservers, stack = [], []
    for line in open(path):
        line = line.strip()
        if line.endswith("<") or line.endswith("{"):
            stack.append(line[:-1].rstrip(": "))
            if stack == ["vserver"]:
                vservers.append({"name": None, "vip": None, "entries": [], "backends": []})
            elif stack == ["vserver", "vserver_entry"]:
                vservers[-1]["entries"].append({})
            elif stack == ["vserver", "backend"]:
                vservers[-1]["backends"].append({})
            continue
        if line in (">", "}"):
            stack.pop()
            continue
        key, _, value = line.partition(":")
        value = value.strip().strip('"')
        if stack == ["vserver"] and key == "name":
            vservers[-1]["name"] = value
        elif stack == ["vserver", "entry_address"] and key == "ipv4":
            vservers[-1]["vip"] = value.split("/")[0]
        elif stack == ["vserver", "vserver_entry"] and key in ("protocol", "port"):
            vservers[-1]["entries"][-1][key] = value
        elif stack == ["vserver", "backend", "host"] and key in ("fqdn", "ipv4"):
            vservers[-1]["backends"][-1][key] = value.split("/")[0]
    return vservers


def expected_ipvs(vservers):
    """Returns {(protocol, vip:port): {backend:port}}, as DSR keeps the port."""
    services = {}
    for vserver in vservers:
        for entry in vserver["entries"]:
            port = entry["port"]
            services[(entry["protocol"], f"{vserver['vip']}:{port}")] = {
                f"{backend['ipv4']}:{port}" for backend in vserver["backends"]
            }
    return services


def parse_ipvs(text):
    """Returns {(protocol, vip:port): {destination}} from ipvsadm -Ln."""
    services, current = {}, None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] in ("TCP", "UDP"):
            current = (fields[0], fields[1])
            services[current] = set()
        elif len(fields) >= 2 and fields[0] == "->" and current and fields[1] != "RemoteAddress:Port":
            services[current].add(fields[1])
    return services


def check_ipvs(vservers, text):
    want, have = expected_ipvs(vservers), parse_ipvs(text)
    errors = [f"service {' '.join(key)} is missing" for key in want if key not in have]
    errors += [f"service {' '.join(key)} is not in the cluster" for key in have if key not in want]
    for key in want.keys() & have.keys():
        for destination in sorted(want[key] - have[key]):
            errors.append(f"{' '.join(key)} lacks the destination {destination}")
        for destination in sorted(have[key] - want[key]):
            errors.append(f"{' '.join(key)} has the unknown destination {destination}")
    count = sum(len(destinations) for destinations in want.values())
    return errors, f"{len(want)} services and {count} destinations, as in cluster.pb"


def check_vservers(vservers, text):
    listed = re.findall(r"^\[ *\d+\] (\S+)$", text, re.M)
    names = [vserver["name"] for vserver in vservers]
    errors = [f"vserver {name} is not listed" for name in names if name not in listed]
    errors += [f"vserver {name} is not in the cluster" for name in listed if name not in names]
    return errors, f"{len(listed)} vservers: {', '.join(listed)}"


def find_vserver(vservers, name):
    for vserver in vservers:
        if vserver["name"] == name:
            return vserver
    sys.exit(f"check.py: no vserver {name} in the cluster")


def check_vserver(vservers, name, text):
    vserver = find_vserver(vservers, name)
    errors = []
    for pattern in [rf"Name: +{re.escape(name)}$", rf"IPv4 Address: +{re.escape(vserver['vip'])}/32$"]:
        if not re.search(pattern, text, re.M):
            errors.append(f"no line matches {pattern!r}")
    for entry in vserver["entries"]:
        line = rf"IPv4 {entry['protocol']}/{entry['port']} +\(DSR, wlc scheduler\)\n +State: +enabled, healthy, active$"
        if not re.search(line, text, re.M):
            errors.append(f"service {entry['protocol']}/{entry['port']} is not shown enabled, healthy and active")
    services = ", ".join(f"{entry['protocol']}/{entry['port']}" for entry in vserver["entries"])
    return errors, f"{name} on {vserver['vip']}, {services} healthy and active"


def check_destinations(vservers, name, text):
    vserver = find_vserver(vservers, name)
    errors = []
    for entry in vserver["entries"]:
        for backend in vserver["backends"]:
            line = f"{name}/{backend['ipv4']}:{entry['port']}/{entry['protocol']} (enabled, healthy, active)"
            if line not in text:
                errors.append(f"no line shows {line}")
    names = ", ".join(backend["fqdn"] for backend in vserver["backends"])
    return errors, f"{len(vserver['backends'])} backends of {name} healthy and active: {names}"


def check_traffic(vservers, count, text):
    ip_of = {backend["fqdn"]: backend["ipv4"] for vserver in vservers for backend in vserver["backends"]}
    errors = []
    for (protocol, address), destinations in sorted(parse_ipvs(text).items()):
        replies = collections.Counter()
        for _ in range(count):
            try:
                with urllib.request.urlopen(f"http://{address}/", timeout=2) as reply:
                    replies[reply.read().decode().strip()] += 1
            except OSError:
                replies["FAILED"] += 1
        print(f"   {address} -> " + ", ".join(f"{name} x{n}" for name, n in sorted(replies.items())), flush=True)
        port = address.split(":")[1]
        for name in replies:
            if name == "FAILED":
                errors.append(f"{replies[name]} of {count} connections to {address} failed")
            elif f"{ip_of.get(name)}:{port}" not in destinations:
                errors.append(f"{address} reached {name}, which is not one of its destinations")
        if len(destinations) >= 2 and len(replies) < 2:
            errors.append(f"{address} has {len(destinations)} destinations but reached only {', '.join(replies)}")
    return errors, "every service reached only its destinations, and at least two of them where it has two or more"


def main():
    vservers = parse_cluster(sys.argv[1])
    kind, args, text = sys.argv[2], sys.argv[3:], sys.stdin.read()
    if kind == "ipvs":
        errors, summary = check_ipvs(vservers, text)
    elif kind == "vservers":
        errors, summary = check_vservers(vservers, text)
    elif kind == "vserver":
        errors, summary = check_vserver(vservers, args[0], text)
    elif kind == "destinations":
        errors, summary = check_destinations(vservers, args[0], text)
    elif kind == "traffic":
        errors, summary = check_traffic(vservers, int(args[0]), text)
    else:
        sys.exit(f"check.py: unknown check {kind}")
    for error in errors:
        print(f"   mismatch: {error}")
    if errors:
        sys.exit(1)
    print(f"   checked: {summary}")


main()
PY
# check KIND [ARG]: runs check.py on stdin against the cluster.
check() { python3 "$lab/check.py" "$cluster_file" "$@"; }

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

# cli NODE COMMAND: the seesaw shell of NODE, on its private engine socket.
cli() {
  ip netns exec "lab-$1" "$bin/seesaw_cli" -engine "$lab/$1/run/engine/engine.sock" -c "$2"
}

ha_state() { cli "$1" "show ha" 2>/dev/null | sed -n 's/^ *State: *\([A-Z]*\).*/\1/p'; }
is_state() { [[ $(ha_state "$1") == "$2" ]]; }
master_has_services() {
  [[ $(ip netns exec "lab-$1" ipvsadm -Ln | grep -c '^TCP') -eq ${#services[@]} ]]
}
# ipvs_matches NODE: NODE's IPVS contains every service and backend of the cluster.
ipvs_matches() { ip netns exec "lab-$1" ipvsadm -Ln | check ipvs; }

# pid_of NODE PROGRAM: the pids of PROGRAM in NODE's network namespace. The
# kernel keeps only the first 15 bytes of a program's name in comm.
pid_of() {
  local pid
  for pid in $(ip netns pids "lab-$1"); do
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "${2:0:15}" ]]; then echo "$pid"; fi
  done
}
daemons=(seesaw_ncc seesaw_engine seesaw_ha seesaw_healthcheck seesaw_ecu)
# watchdog_children NODE: prints the pid of NODE's watchdog and of each of
# its five daemons; fails unless each runs as a child of that watchdog.
watchdog_children() {
  local node=$1 watchdog program pid parent
  watchdog=$(cat "$lab/$node/watchdog.pid")
  [[ $(cat "/proc/$watchdog/comm" 2>/dev/null) == seesaw_watchdog ]] || return 1
  printf 'seesaw_watchdog %s' "$watchdog"
  for program in "${daemons[@]}"; do
    pid=$(pid_of "$node" "$program")
    [[ -n $pid ]] || return 1
    parent=$(sed -n 's/^PPid:\t*//p' "/proc/$pid/status")
    [[ $parent == "$watchdog" ]] || return 1
    printf ', %s %s' "$program" "$pid"
  done
}
# ecu_healthz NODE: GET of the ECU's plain-HTTP /healthz (port 10257)
# inside NODE's network namespace; prints the status and body, fails
# unless the status is 200.
ecu_healthz() {
  ip netns exec "lab-$1" python3 -c '
import urllib.request
with urllib.request.urlopen("http://127.0.0.1:10257/healthz", timeout=2) as reply:
    print(reply.status, reply.read().decode().strip())
'
}
# check_daemons NODE: waits until the watchdog's five daemons run on NODE
# and its ECU returns 200 for /healthz, and prints both.
check_daemons() {
  local node=$1
  wait_for 60 "the watchdog's five daemons on $node" watchdog_children "$node"
  say "$node: $(watchdog_children "$node")"
  say "every watchdog child runs on $node"
  wait_for 60 "the ECU of $node to answer /healthz" ecu_healthz "$node"
  say "$node: GET http://127.0.0.1:10257/healthz -> $(ecu_healthz "$node")"
}

add_host() { # add_host NAME ADDRESS: a namespace with eth0 on the segment
  local ns=lab-$1
  ip netns add "$ns"
  ip link add eth0 netns "$ns" type veth peer name "$1" netns "lab-seg"
  ip -n lab-seg link set "$1" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$2/25" dev eth0
  ip -n "$ns" link set eth0 up
}

start_node() { # start_node NODE: seesaw_watchdog with the node's own files
  local node=$1 dir=$lab/$1
  mkdir -p "$dir/etc" "$dir/run" "$dir/log"
  cp "${node_cfg[$node]}" "$dir/etc/seesaw.cfg"
  cp "$cluster_file" "$dir/etc/cluster.pb"
  cp "$repo/etc/watchdog.cfg" "$dir/etc/watchdog.cfg"
  # A private mount namespace gives each node its own /etc/seesaw,
  # /var/run/seesaw, /var/log/seesaw and /usr/local/seesaw.
  ip netns exec "lab-$node" unshare --mount --propagation private bash -c "
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
  # Killed on purpose later; disowned so that bash does not report it.
  disown
  echo $! >"$dir/watchdog.pid"
}

kill_node() { # kill_node NODE: dies as a crashed VM would
  local node=$1
  for pid in $(ip netns pids "lab-$node"); do kill -9 "$pid" 2>/dev/null || true; done
  ip -n "lab-$node" link set ens192 down
  ip -n "lab-$node" link set ens224 down
}

# ---------------------------------------------------------------------------
step "kernel $(uname -r); segment $net.128/25 on a bridge"
modprobe ip_vs 2>/dev/null || true
ip netns add "$segment"
ip -n "$segment" link add br0 type bridge
ip -n "$segment" link set br0 up

step "gateway $net.129 and client $net.150"
add_host gw "$net.129"
add_host client "$net.150"

step "backends: VIPs on lo with ARP suppressed, /healthz on 10256, names on 80 and 443"
cat >"$lab/backend.py" <<'PY'
import http.server, os, sys, threading
name, flag = sys.argv[1], sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        healthy = not os.path.exists(flag)
        code = 200 if self.server.server_port != 10256 or healthy else 500
        body = (name + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # probes that close early are expected
servers = [Server(("", port), Handler) for port in (80, 443, 10256)]
for server in servers[1:]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
servers[0].serve_forever()
PY
for name in "${!backend_ip[@]}"; do
  add_host "$name" "$net.${backend_ip[$name]}"
  for vip in "${vips[@]}"; do ip -n "lab-$name" addr add "$net.$vip/32" dev lo; done
  ip netns exec "lab-$name" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  ip netns exec "lab-$name" python3 "$lab/backend.py" "$name" "$lab/$name.unhealthy" &
  disown
done

step "nodes n1 ($net.130) and n2 ($net.131): ens192 and ens224 on the segment"
for node in n1 n2; do
  ns=lab-$node
  ip netns add "$ns"
  for nic in ens192 ens224; do
    ip link add "$nic" netns "$ns" type veth peer name "$node-$nic" netns "$segment"
    ip -n "$segment" link set "$node-$nic" master br0 up
  done
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$net.${node_ip[$node]}/25" dev ens192
  ip -n "$ns" link set ens192 up
  ip -n "$ns" link set ens224 up
  ip -n "$ns" route add default via "$net.129"
done

step "seesaw_watchdog on both nodes (it starts the ncc, engine, ha, healthcheck and ecu)"
start_node n1
wait_for 120 "n1 to become master" is_state n1 LEADER
start_node n2
wait_for 120 "n2 to become backup" is_state n2 BACKUP
wait_for 120 "the master to program all ${#services[@]} services" master_has_services n1
wait_for 120 "every backend of cluster.pb in n1's IPVS" ipvs_matches n1
say "n1 is LEADER, n2 is BACKUP"

step "the watchdog's children on each node, and the ECU's /healthz"
check_daemons n1
check_daemons n2

want() { local s; for s in "${steps[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }

# show NODE COMMAND [CHECK...]: prints seesaw -c COMMAND on NODE and runs
# check.py CHECK... on its output.
show() {
  local node=$1 command=$2 output
  shift 2
  step "$node: seesaw -c \"$command\""
  output=$(cli "$node" "$command") || fail "$node: seesaw -c \"$command\" failed"
  printf '%s\n' "$output"
  if [[ $# -gt 0 ]]; then
    check "$@" <<<"$output" || fail "$node: seesaw -c \"$command\" does not match cluster.pb"
  fi
}

if want show; then
  declare -A role=([n1]=LEADER [n2]=BACKUP)
  for node in n1 n2; do
    show "$node" "show ha"
    [[ $(ha_state "$node") == "${role[$node]}" ]] || fail "$node: show ha does not say State: ${role[$node]}"
    say "checked: State: ${role[$node]}"
    show "$node" "show vservers" vservers
    show "$node" "show vserver admin-control-plane" vserver admin-control-plane
    show "$node" "show destinations admin-control-plane" destinations admin-control-plane
  done
  step "n1: ipvsadm -Ln"
  rules=$(ip netns exec lab-n1 ipvsadm -Ln)
  printf '%s\n' "$rules"
  check ipvs <<<"$rules" || fail "n1's IPVS does not match cluster.pb"
  say "the show commands and IPVS match cluster.pb on both nodes"
fi

# traffic NODE: 10 connections from the client to each service of
# NODE's IPVS. With WLC and equal weights, a closed connection still
# counts against its destination while IPVS keeps it (in TIME_WAIT), so
# the second connection already goes to another destination.
traffic() {
  ip netns exec "lab-$1" ipvsadm -Ln | ip netns exec lab-client python3 "$lab/check.py" "$cluster_file" traffic 10
}

if want traffic; then
  step "client: every VIP and port, ten connections each, spread by WLC"
  traffic n1 || fail "the traffic through n1 did not spread as WLC spreads it"
  say "every service answered from at least two of its backends"
fi

# ipvs_rules NODE: the IPVS services and destinations, without counters.
ipvs_rules() { ip netns exec "lab-$1" ipvsadm -Sn | sort; }
# changes BEFORE AFTER: the lines that differ.
changes() {
  printf '%s\n' "$1" >"$lab/before.txt"
  printf '%s\n' "$2" >"$lab/after.txt"
  diff "$lab/before.txt" "$lab/after.txt" || true
}
# vip_addresses NODE: the addresses on the LB interface.
vip_addresses() { ip -n "lab-$1" -br addr show ens224; }
# ncc_changes NODE: how many changes the engine has sent to its NCC.
ncc_changes() { grep -c "changes to the NCC" "$lab/$1/log/seesaw_engine.INFO" || true; }

if want restart; then
  step "SIGKILL to n1's engine with a connection open; the watchdog restarts it"
  before=$(ipvs_rules n1)
  # A connection that stays open across the restart, then finishes its
  # request: it must reach the same backend and get its reply.
  cat >"$lab/held.py" <<'PY'
import os, socket, sys, time
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
conn.sendall(b"GET / HTTP/1.0\r\n")
open(sys.argv[3], "w").write("open\n")
while not os.path.exists(sys.argv[4]):
    time.sleep(0.1)
conn.sendall(b"\r\n")
conn.settimeout(10)
reply = conn.recv(4096).decode()
print(reply.splitlines()[0], reply.split("\r\n\r\n", 1)[1].strip())
PY
  ip netns exec lab-client python3 "$lab/held.py" "$net.143" 443 "$lab/held.open" "$lab/held.go" >"$lab/held.out" 2>&1 &
  held=$!
  wait_for 20 "the held connection to open" test -f "$lab/held.open"
  engine=$(pid_of n1 seesaw_engine)
  [[ -n $engine ]] || fail "no seesaw_engine runs on n1"
  kill -9 "$engine"
  restarted() { local pid; pid=$(pid_of n1 seesaw_engine); [[ -n $pid && $pid != "$engine" ]] && is_state n1 LEADER; }
  wait_for 90 "the watchdog to restart n1's engine" restarted
  sleep 5
  after=$(ipvs_rules n1)
  [[ $after == "$before" ]] || fail "IPVS changed across the engine restart: $(changes "$before" "$after")"
  say "engine pid $engine killed, $(pid_of n1 seesaw_engine) serving; IPVS unchanged"
  touch "$lab/held.go"
  wait "$held" || fail "the held connection failed: $(cat "$lab/held.out")"
  grep -q "200 OK" "$lab/held.out" || fail "the held connection got: $(cat "$lab/held.out")"
  say "the connection opened before the kill completed: $(cat "$lab/held.out")"
fi

if want reload; then
  step "config reload of an unchanged cluster.pb on n1 changes nothing"
  before=$(ipvs_rules n1)
  addresses=$(vip_addresses n1)
  sent=$(ncc_changes n1)
  cli n1 "config reload" || fail "config reload failed"
  sleep 5
  after=$(ipvs_rules n1)
  [[ $after == "$before" ]] || fail "IPVS changed on an unchanged reload: $(changes "$before" "$after")"
  [[ $(vip_addresses n1) == "$addresses" ]] || fail "the VIPs changed on an unchanged reload"
  [[ $(ncc_changes n1) == "$sent" ]] || fail "the engine sent changes to the NCC on an unchanged reload"
  say "no change sent to the NCC; IPVS and VIPs as before"
fi

if want config-change; then
  step "cluster.pb on n1 loses user-1-ingress-controller, then gets it back"
  full=$(ipvs_rules n1)
  cp "$lab/n1/etc/cluster.pb" "$lab/cluster.pb.full"
  python3 - "$lab/n1/etc/cluster.pb" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
start = text.index('vserver: <\n  name: "user-1-ingress-controller"')
depth, end = 0, start
for match in re.finditer(r"<|>", text[start:]):
    depth += 1 if match.group() == "<" else -1
    if depth == 0:
        end = start + match.end() + 1
        break
open(path + ".new", "w").write(text[:start] + text[end:])
PY
  mv "$lab/n1/etc/cluster.pb.new" "$lab/n1/etc/cluster.pb"
  gone() { ! ip netns exec lab-n1 ipvsadm -Ln | grep -q "$net.145:" && ! vip_addresses n1 | grep -q "$net.145/"; }
  wait_for 30 "the vserver's services and VIP to leave n1" gone
  [[ $(ip netns exec lab-n1 ipvsadm -Ln | grep -c '^TCP') -eq 4 ]] || fail "other services changed"
  say "$net.145:80 and :443 and the VIP $net.145 are gone; the other 4 services stay"
  cp "$lab/cluster.pb.full" "$lab/n1/etc/cluster.pb"
  # Its destinations return as their new checks pass, one by one.
  whole() { [[ $(ipvs_rules n1) == "$full" ]]; }
  wait_for 90 "the vserver and all its destinations to come back" whole
  say "restored: all ${#services[@]} services are back"
fi

if want bad-config; then
  step "a broken cluster.pb on n1 is reported and the last good config stays"
  before=$(ipvs_rules n1)
  cp "$lab/n1/etc/cluster.pb" "$lab/cluster.pb.good"
  printf 'vserver: <\n  name: "broken"\n' >>"$lab/n1/etc/cluster.pb"
  reported() { cli n1 "config status -o json" | grep -q 'cluster.pb:'; }
  wait_for 30 "the engine to report the broken file" reported
  say "config status: $(cli n1 "config status -o json" | grep -o '"[^"]*cluster.pb:[^"]*"' | head -n 1)"
  sleep 2
  after=$(ipvs_rules n1)
  [[ $after == "$before" ]] || fail "IPVS changed after a broken config: $(changes "$before" "$after")"
  cp "$lab/cluster.pb.good" "$lab/n1/etc/cluster.pb"
  say "IPVS untouched; the good file is back"
fi

# The prober tries every service at once every 50 ms, each attempt
# limited to 200 ms, in one thread with non-blocking sockets, so that it
# detects a recovery within about 50 ms and loads the emulated CPU little.
cat >"$lab/prober.py" <<'PY'
import selectors, socket, sys, time
targets = [(t.split(":")[0], int(t.split(":")[1])) for t in sys.argv[1:]]
while True:
    start = time.time()
    selector = selectors.DefaultSelector()
    results = {}
    for target in targets:
        conn = socket.socket()
        conn.setblocking(False)
        conn.connect_ex(target)
        selector.register(conn, selectors.EVENT_WRITE, [target, b""])
    deadline = start + 0.2
    while len(results) < len(targets) and time.time() < deadline:
        for key, events in selector.select(max(0.0, deadline - time.time())):
            target, data = key.data
            conn = key.fileobj
            try:
                if events & selectors.EVENT_WRITE:
                    conn.send(b"GET / HTTP/1.0\r\n\r\n")
                    selector.modify(conn, selectors.EVENT_READ, key.data)
                    continue
                chunk = conn.recv(64)
            except OSError:
                chunk = b""
            results[target] = b" 200 " in chunk
            selector.unregister(conn)
            conn.close()
    for key in list(selector.get_map().values()):
        key.fileobj.close()
    for vip, port in targets:
        ok = results.get((vip, port), False)
        print(f"{start:.3f} {vip}:{port} {1 if ok else 0}", flush=True)
    time.sleep(max(0.0, start + 0.05 - time.time()))
PY

# failover FROM TO: kills FROM as a crashed VM dies while the client
# probes every service, waits until TO serves them all, and sets $outage
# to the seconds from the kill to the last service's recovery.
failover() {
  local from=$1 to=$2 probes=$lab/probes-$1-$SECONDS.txt prober killed_at
  ip netns exec lab-client python3 "$lab/prober.py" "${services[@]/#/$net.}" >"$probes" &
  prober=$!
  sleep 3
  killed_at=$(date +%s.%N)
  kill_node "$from"
  wait_for 60 "$to to become master" is_state "$to" LEADER
  recovered() {
    local service last
    for service in "${services[@]}"; do
      last=$(grep " $net.$service " "$probes" | tail -n 1)
      [[ ${last##* } == 1 ]] || return 1
    done
  }
  wait_for 60 "every VIP to answer through $to" recovered
  sleep 1
  kill "$prober"
  wait "$prober" 2>/dev/null || true
  # The outage of a service runs from the kill to its first success
  # after a failure. Probes in flight while the links went down still
  # succeed, so they do not count.
  outage=$(python3 - "$killed_at" "$probes" <<'PY'
import sys
killed = float(sys.argv[1])
failed, recovered = {}, {}
for line in open(sys.argv[2]):
    stamp, target, ok = line.split()
    stamp = float(stamp)
    if stamp < killed or target in recovered:
        continue
    if ok == "0":
        failed.setdefault(target, stamp)
    elif target in failed:
        recovered[target] = stamp
print(f"{max(recovered.values()) - killed:.2f}" if recovered else "0.00")
PY
)
}

# revive NODE: brings a killed node back; it must rejoin as backup.
revive() {
  local node=$1 other=n1
  [[ $node == n1 ]] && other=n2
  ip -n "lab-$node" link set ens192 up
  ip -n "lab-$node" link set ens224 up
  ip -n "lab-$node" route replace default via "$net.129"
  start_node "$node"
  wait_for 120 "$node to rejoin as backup" is_state "$node" BACKUP
  check_daemons "$node"
  sleep 5
  is_state "$other" LEADER || fail "$other lost mastership when $node came back"
}

if want failover; then
  step "failover: SIGKILL to n1's daemons and its links down, while the client connects"
  failover n1 n2
  say "every VIP answered again through n2 ${outage} s after the kill"
  echo "failover_seconds $outage" >"$lab/failover.txt"
  [[ -n ${SEESAW_LAB_RESULTS:-} ]] && cp "$lab/failover.txt" "$SEESAW_LAB_RESULTS/"
fi

if want rejoin; then
  step "n1 comes back and stays backup (no preemption)"
  revive n1
  say "n1 is BACKUP, n2 stays LEADER"
fi

if want cycles; then
  cycles=${SEESAW_LAB_CYCLES:-10}
  step "$cycles failover cycles, the master killed each time"
  outages=()
  for ((cycle = 1; cycle <= cycles; cycle++)); do
    from=n1
    is_state n2 LEADER && from=n2
    to=n1
    [[ $from == n1 ]] && to=n2
    failover "$from" "$to"
    outages+=("$outage")
    say "cycle $cycle: $from -> $to, every VIP answered again after $outage s"
    revive "$from"
  done
  say "outage over $cycles cycles: $(printf '%s\n' "${outages[@]}" | python3 -c "
import statistics, sys
values = [float(line) for line in sys.stdin]
print(f'median {statistics.median(values):.2f} s, min {min(values):.2f} s, max {max(values):.2f} s')
")"
fi

if want unhealthy; then
  master=n1
  is_state n2 LEADER && master=n2
  step "admin-1 fails its health check; its destination leaves IPVS on $master"
  touch "$lab/admin-1.unhealthy"
  gone() { ! ip netns exec "lab-$master" ipvsadm -Ln | grep -q "$net.163:"; }
  wait_for 60 "admin-1 to leave IPVS" gone
  step "$master: ipvsadm -Ln without admin-1"
  rules=$(ip netns exec "lab-$master" ipvsadm -Ln)
  printf '%s\n' "$rules"
  ! grep -q "$net.163:" <<<"$rules" || fail "$net.163 is still a destination on $master"
  say "$net.163 is in no service on $master"
  step "client: every VIP and port, ten connections each, without admin-1"
  replies=$(traffic "$master") || { printf '%s\n' "$replies"; fail "the traffic without admin-1 failed"; }
  printf '%s\n' "$replies"
  ! grep -qw admin-1 <<<"$replies" || fail "the client reached admin-1"
  say "no connection reached admin-1"
  rm "$lab/admin-1.unhealthy"
  back() { ip netns exec "lab-$master" ipvsadm -Ln | grep -q "$net.163:"; }
  wait_for 60 "admin-1 to return to IPVS" back
  wait_for 60 "every backend back in $master's IPVS" ipvs_matches "$master"
  step "$master: ipvsadm -Ln with admin-1 healthy again"
  rules=$(ip netns exec "lab-$master" ipvsadm -Ln)
  printf '%s\n' "$rules"
  check ipvs <<<"$rules" || fail "$master's IPVS does not match cluster.pb after admin-1 recovered"
  say "admin-1 is healthy again: $net.163 is back in every service of $master"
fi

step "every step succeeded"
