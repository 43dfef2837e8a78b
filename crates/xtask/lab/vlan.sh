#!/bin/bash
# VLAN-attached and dedicated VIPs, inside the kernel lab as root: one
# Seesaw node under seesaw_watchdog whose cluster.pb has two `vlan`
# blocks, a vserver on each VLAN, one on the LB network and one in a
# dedicated VIP subnet. The engine, through the NCC, must create the VLAN
# interfaces <lb>.<id> with the node's addresses and put each VIP where it
# belongs: a VLAN's VIP on that VLAN's interface, the LB network's VIP on
# the LB interface, the dedicated VIP on the dummy interface. A client
# reaches each VIP through IPVS. Then cluster.pb changes: a VLAN and its
# vserver leave and come back, and a VLAN's address changes, each without
# touching the other VIPs.
#
# Usage: vlan.sh BIN_DIR
#   BIN_DIR is the directory of the Seesaw binaries (seesaw_watchdog and
#           the daemons).
#
# Each step checks its outcome and the script exits non-zero at the first
# failure, printing the logs that explain it.
set -euo pipefail

bin=$(cd "$1" && pwd)
lab=$(mktemp -d /tmp/seesaw-vlan.XXXXXX)
prefix=vl-
net=203.0.113
source "$(dirname "$0")/nodes.sh"
trap cleanup EXIT

node=n1
lan_vip=$net.30
dedicated_subnet=10.250.0.0/24
dedicated_vip=10.250.0.10
# VLAN id -> the node's address on it, the vserver's VIP, the backend's
# and the client's addresses.
declare -A vlan_node=([100]=10.100.0.2 [200]=10.200.0.2)
declare -A vlan_vip=([100]=10.100.0.10 [200]=10.200.0.10)
declare -A vlan_backend=([100]=10.100.0.21 [200]=10.200.0.21)
declare -A vlan_client=([100]=10.100.0.50 [200]=10.200.0.50)

# vlan ID ADDRESS: a `vlan` block with the node's ADDRESS/24 on VLAN ID.
vlan() {
  cat <<EOF
vlan: <
  vlan_id: $1
  host: <
    fqdn: "n1-vlan$1.lab."
    ipv4: "$2/24"
  >
>
EOF
}

# cluster_pb VLAN:ADDRESS...: the cluster with a `vlan` block and a vserver
# for each VLAN given, and the LB network's and the dedicated vservers.
cluster_pb() {
  cluster_head "$net.10" "$net.11" "$net.12"
  echo "dedicated_vip_subnet: \"$dedicated_subnet\""
  vserver_pb lan-web "$lan_vip" 5 "web.lab.=$net.21"
  vserver_pb dedicated-web "$dedicated_vip" 5 "web.lab.=$net.21"
  local pair id
  for pair in "$@"; do
    id=${pair%:*}
    vlan "$id" "${pair#*:}"
    vserver_pb "vlan$id-web" "${vlan_vip[$id]}" 5 "web-vlan$id.lab.=${vlan_backend[$id]}"
  done
}

seesaw_cfg vlan-lab "$net.11" "$net.12" "$net.10" 61 false >"$lab/seesaw.cfg"

# on NODE_INTERFACE ADDRESS: whether the node has ADDRESS (with any prefix
# length) on that interface.
on() { ip -n "$prefix$node" -br addr show dev "$1" 2>/dev/null | grep -q " $2/"; }
# nowhere ADDRESS: whether no interface of the node has ADDRESS.
nowhere() { ! ip -n "$prefix$node" -br addr show | grep -q " $1/"; }
has_link() { ip -n "$prefix$node" link show dev "$1" >/dev/null 2>&1; }
# client_gets URL NAME: whether the client gets NAME from URL.
client_gets() { [[ $(probe client "$1" 2>/dev/null) == "$2" ]]; }
# others: the node's addresses and IPVS services that are not VLAN 100's.
others() {
  ip -n "$prefix$node" -br addr show | grep -v '^ens224\.100' | sed -E 's/^(\S+)\s+\S+\s+/\1 /'
  ip netns exec "$prefix$node" ipvsadm -Sn | grep -v "${vlan_vip[100]}" | sort
}

# vlan_ready ID: the VLAN interface with the node's address, and the
# vserver's VIP on it and not on the LB interface.
vlan_ready() {
  has_link "ens224.$1" && on "ens224.$1" "${vlan_node[$1]}" &&
    on "ens224.$1" "${vlan_vip[$1]}" && ! on ens224 "${vlan_vip[$1]}"
}

# check_vips: every VIP on its interface, and every VIP answering the client.
check_vips() {
  local id
  for id in 100 200; do
    wait_for 60 "VLAN $id's interface, address and VIP" vlan_ready "$id"
    say "ens224.$id: $(ip -n "$prefix$node" -br addr show dev "ens224.$id" | xargs)"
  done
  wait_for 60 "$lan_vip on the LB interface" on ens224 "$lan_vip"
  say "ens224: $(ip -n "$prefix$node" -br addr show dev ens224 | xargs)"
  wait_for 60 "the dedicated VIP $dedicated_vip on dummy0" on dummy0 "$dedicated_vip"
  say "dummy0: $(ip -n "$prefix$node" -br addr show dev dummy0 | xargs)"
  on ens224 "$dedicated_vip" && fail "the dedicated VIP is on the LB interface"
  for id in 100 200; do
    wait_for 90 "the client to reach ${vlan_vip[$id]} on VLAN $id" client_gets "http://${vlan_vip[$id]}/" web-vlan$id
  done
  wait_for 90 "the client to reach $lan_vip" client_gets "http://$lan_vip/" web
  wait_for 90 "the client to reach the dedicated VIP" client_gets "http://$dedicated_vip/" web
  say "the client reached ${vlan_vip[100]}, ${vlan_vip[200]}, $lan_vip and $dedicated_vip through IPVS"
}

# ---------------------------------------------------------------------------
step "kernel $(uname -r); segment $net.0/24 on a bridge, VLANs 100 and 200 tagged on it"
modprobe ip_vs 2>/dev/null || true
modprobe 8021q 2>/dev/null || true
make_segment

step "gateway $net.1; backends web ($net.21) and web-vlan100, web-vlan200 on the VLANs"
add_host gw "$net.1/24"
add_host web "$net.21/24"
hold_vips web "$lan_vip" "$dedicated_vip"
start_web web
for id in 100 200; do
  name=web-vlan$id
  add_host "$name" "$net.2$((id / 100 + 1))/24"
  add_vlan_link "$name" "$id" "${vlan_backend[$id]}/24"
  hold_vips "$name" "${vlan_vip[$id]}"
  start_web "$name"
done

step "client $net.50, on VLAN 100 as ${vlan_client[100]} and VLAN 200 as ${vlan_client[200]}"
add_host client "$net.50/24"
for id in 100 200; do add_vlan_link client "$id" "${vlan_client[$id]}/24"; done
# The dedicated subnet is routed to the cluster VIP, as a router would.
ip -n "${prefix}client" route add "$dedicated_subnet" via "$net.10"

step "node n1 ($net.11) under seesaw_watchdog"
add_node n1 "$net.11"
cluster_pb 100:"${vlan_node[100]}" 200:"${vlan_node[200]}" >"$lab/cluster.pb"
start_node n1 "$lab/seesaw.cfg" "$lab/cluster.pb"
wait_for 120 "n1 to become master" is_state n1 LEADER
say "n1 is LEADER"

step "the VLAN interfaces and every VIP on its interface"
check_vips
cli n1 "show vlans" || fail "show vlans failed"

step "SIGKILL to the engine; the watchdog restarts it and the VLANs stay as they are"
engine=$(pid_of n1 seesaw_engine)
[[ -n $engine ]] || fail "no seesaw_engine runs on n1"
before=$(others)
kill -9 "$engine"
restarted() { local pid; pid=$(pid_of n1 seesaw_engine); [[ -n $pid && $pid != "$engine" ]] && is_state n1 LEADER; }
wait_for 120 "the watchdog to restart the engine" restarted
stays 15 "VLAN 100's interface, address and VIP" vlan_ready 100
[[ $(others) == "$before" ]] || fail "addresses or IPVS changed across the restart: $(diff <(echo "$before") <(others))"
say "the VLAN interfaces, their addresses and every VIP stayed"

step "cluster.pb loses VLAN 100 and its vserver"
before=$(others)
cluster_pb 200:"${vlan_node[200]}" >"$lab/n1/etc/cluster.pb"
gone() { ! has_link ens224.100 && nowhere "${vlan_vip[100]}" && ! ipvs_has n1 "${vlan_vip[100]}:80"; }
wait_for 60 "ens224.100 and ${vlan_vip[100]} to leave n1" gone
[[ $(others) == "$before" ]] || fail "other addresses or IPVS services changed: $(diff <(echo "$before") <(others))"
client_gets "http://${vlan_vip[200]}/" web-vlan200 || fail "${vlan_vip[200]} stopped answering"
client_gets "http://$lan_vip/" web || fail "$lan_vip stopped answering"
client_gets "http://$dedicated_vip/" web || fail "$dedicated_vip stopped answering"
say "ens224.100 and ${vlan_vip[100]} are gone; the other addresses, VIPs and services stay"

step "cluster.pb gets VLAN 100 and its vserver back"
cluster_pb 100:"${vlan_node[100]}" 200:"${vlan_node[200]}" >"$lab/n1/etc/cluster.pb"
check_vips
say "VLAN 100 is back with its VIP"

step "VLAN 200's address changes from ${vlan_node[200]} to 10.200.0.3"
vlan_node[200]=10.200.0.3
cluster_pb 100:"${vlan_node[100]}" 200:"${vlan_node[200]}" >"$lab/n1/etc/cluster.pb"
readdressed() { on ens224.200 10.200.0.3 && ! on ens224.200 10.200.0.2; }
wait_for 60 "ens224.200 to carry 10.200.0.3 instead of 10.200.0.2" readdressed
check_vips
say "ens224.200 has the new address and ${vlan_vip[200]} still answers"

step "every step succeeded"
