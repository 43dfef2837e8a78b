#!/bin/bash
# Runs inside the kernel lab, as root. It brings up node .130 of the sample
# GKE manual-mode pair as a network namespace, with its ens192 and ens224
# interfaces on a shared segment. Then it starts seesaw_ncc there on a
# private socket and checks that it serves. Everything stays inside the VM.
#
# Usage: sample-pair.sh BIN_DIR
set -euo pipefail
bin=$1
run=$(mktemp -d)
node=seesaw-n1
segment=seesaw-segment

cleanup() {
  [[ -n ${ncc_pid:-} ]] && kill "$ncc_pid" 2>/dev/null && wait "$ncc_pid" 2>/dev/null
  ip netns del "$node" 2>/dev/null || true
  ip netns del "$segment" 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "kernel $(uname -r): IPVS $(cat /proc/net/ip_vs >/dev/null && echo available)"

step "node 100.115.222.130: namespace $node with ens192 and ens224 on one segment"
ip netns add "$segment"
ip netns add "$node"
ip -n "$segment" link add br0 type bridge
ip -n "$segment" link set br0 up
for nic in ens192 ens224; do
  ip link add "$nic" netns "$node" type veth peer name "n1-$nic" netns "$segment"
  ip -n "$segment" link set "n1-$nic" master br0 up
done
ip -n "$node" link set lo up
ip -n "$node" addr add 100.115.222.130/25 dev ens192
ip -n "$node" link set ens192 up
ip -n "$node" link add dummy0 type dummy
ip -n "$node" -br addr

step "seesaw_ncc in $node"
ip netns exec "$node" "$bin/seesaw_ncc" -socket "$run/ncc.sock" >"$run/ncc.log" 2>&1 &
ncc_pid=$!
for _ in $(seq 50); do
  [[ -S $run/ncc.sock ]] && break
  sleep 0.1
done
if [[ ! -S $run/ncc.sock ]]; then
  echo "seesaw_ncc did not create its socket; its log:" >&2
  cat "$run/ncc.log" >&2
  exit 1
fi
echo "seesaw_ncc serves on $run/ncc.sock (pid $ncc_pid)"
ip netns exec "$node" ipvsadm -Ln
