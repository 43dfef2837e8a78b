#!/bin/bash
# The installation of docs/install.md on a fresh machine, inside the kernel
# lab as root. A private mount namespace makes /usr, /etc and /var writable
# (overlays over the guest's, thrown away at the end) and stands for the
# fresh machine. There `cargo xtask install --binaries DIR` installs the
# release binaries. The operator's steps follow: the node's seesaw.cfg and
# cluster.pb (the sample GKE manual-mode node 100.115.222.130, whose peer
# is absent), the kernel modules of /etc/modules-load.d, `seesaw_engine
# -check`, and seesaw_watchdog started as docs/install.md describes for a
# machine without systemd, which the lab is. The watchdog must start all five
# daemons and keep them running, with their logs in /var/log/seesaw. The CLI
# and the ECU must respond. A second install over the running node keeps the
# operator's files, and SIGTERM to the watchdog stops every daemon.
#
# Usage: install.sh BIN_DIR [INSTALL_DIR]
#   BIN_DIR      the workspace's build directory, target/debug, with the
#                xtask program that `cargo xtask` runs. The lab has no
#                Rust toolchain, so the script runs that program itself.
#   INSTALL_DIR  the binaries to install (--binaries), such as the release
#                build of `cargo xtask release`; BIN_DIR by default.
#
# Each step checks its outcome and the script exits non-zero at the first
# failure, printing the logs that explain it.
set -euo pipefail

bin=$(cd "$1" && pwd)
from=$(cd "${2:-$1}" && pwd)
lab=$(mktemp -d /tmp/seesaw-install.XXXXXX)
prefix=in-
net=100.115.222
source "$(dirname "$0")/nodes.sh"
trap cleanup EXIT

node=${prefix}n1
node_ip=$net.130
daemons=(seesaw_watchdog seesaw_ncc seesaw_engine seesaw_ha seesaw_healthcheck seesaw_ecu)
# The services of watchdog.cfg, in the order in which they start.
services=(ncc engine ha healthcheck ecu)
fixtures=$repo/crates/seesaw-config/tests/fixtures
# The upper layers of the overlays, so the installed files and the logs
# can be read from outside the mount namespace.
root=$lab/root

fail() {
  printf '\nFAILED: %s\n' "$*" >&2
  printf '\n--- the processes in %s\n' "$node" >&2
  ip netns pids "$node" | xargs -r ps -o pid=,ppid=,comm= -p >&2
  local log
  for log in "$lab"/install-*.out "$lab"/watchdog-*.out "$root"/var/upper/log/seesaw/*.INFO \
    "$root"/var/upper/log/seesaw/*.log; do
    [[ -f $log ]] || continue
    printf '\n--- %s (last 40 lines)\n' "${log#"$lab"/}" >&2
    tail -n 40 "$log" >&2
  done
  exit 1
}

# inside COMMAND...: COMMAND on the fresh machine, that is in the node's
# network namespace and the private mount namespace.
inside() { nsenter --target "$(cat "$lab/machine.pid")" --mount --net -- "$@"; }

# mode PATH: the octal mode of PATH on the fresh machine.
mode() { inside stat -c %a "$1"; }

# comm PROGRAM: PROGRAM as /proc/PID/comm shows it, cut to 15 characters.
comm() { printf '%s' "${1:0:15}"; }

# children WATCHDOG: "service=pid" for each of the five daemons that runs
# as a child of the process WATCHDOG, in the order of $services.
children() {
  local service pid found all
  all=$(ip netns pids "$node")
  for service in "${services[@]}"; do
    found=
    for pid in $all; do
      [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$(comm "seesaw_$service")" ]] || continue
      [[ $(sed -n 's/^PPid:\t//p' "/proc/$pid/status" 2>/dev/null) == "$1" ]] || continue
      found=$pid
    done
    printf '%s=%s\n' "$service" "${found:-none}"
  done
}
all_running() { [[ $(children "$1") != *=none* ]]; }

# gone PID: whether process PID no longer runs (absent, or a zombie).
gone() {
  local state
  state=$(sed -n 's/^State:\t\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 0
  [[ -z $state || $state == Z ]]
}

# seesaw_running: whether any Seesaw daemon still runs in the node's
# network namespace.
seesaw_running() {
  local pid
  for pid in $(ip netns pids "$node"); do
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == seesaw_* ]] && return 0
  done
  return 1
}

# start_watchdog N: starts the installed unit's ExecStart on the fresh
# machine with the unit's LimitNOFILE and LimitNPROC, from /, as
# docs/install.md describes for a machine without systemd: with
# -log_dir=/var/log/seesaw, and its output in $lab/watchdog-N.out. Sets
# $watchdog to its PID.
start_watchdog() {
  local unit=/etc/systemd/system/seesaw_watchdog.service exec_start nofile nproc
  exec_start=$(inside sed -n 's/^ExecStart=//p' "$unit")
  nofile=$(inside sed -n 's/^LimitNOFILE=//p' "$unit")
  nproc=$(inside sed -n 's/^LimitNPROC=//p' "$unit")
  [[ -n $exec_start && -n $nofile && -n $nproc ]] || fail "$unit lacks ExecStart, LimitNOFILE or LimitNPROC"
  say "ExecStart=$exec_start, LimitNOFILE=$nofile, LimitNPROC=$nproc"
  # nsenter enters the namespaces and executes the watchdog, so $! is its PID.
  (cd / && ulimit -n "$nofile" && ulimit -u "$nproc" && exec nsenter --target "$(cat "$lab/machine.pid")" \
    --mount --net -- $exec_start -log_dir=/var/log/seesaw) </dev/null >"$lab/watchdog-$1.out" 2>&1 &
  watchdog=$!
}

# stop_watchdog: SIGTERM to the watchdog; it must exit 0 within 60 s, and
# none of the daemons in $pids may run after it.
stop_watchdog() {
  local start status=0 entry
  start=$(now)
  kill -TERM "$watchdog"
  # The watchdog is this script's child, so it stays a zombie until `wait`.
  wait_for 60 "the watchdog to exit after SIGTERM" gone "$watchdog"
  wait "$watchdog" || status=$?
  ((status == 0)) || fail "the watchdog exited with status $status after SIGTERM"
  for entry in $pids; do
    gone "${entry#*=}" || fail "seesaw_${entry%=*} (PID ${entry#*=}) still runs after the watchdog exited"
  done
  seesaw_running && fail "a Seesaw daemon still runs: $(ip netns pids "$node" | xargs -r ps -o pid=,comm= -p)"
  say "the watchdog exited with status 0 after $(seconds_since "$start") s and no daemon runs"
}

# ---------------------------------------------------------------------------
step "kernel $(uname -r); node n1 ($node_ip/25, ens192 and ens224) and a gateway $net.129 on one segment"
make_segment
add_host gw "$net.129/25"
ip netns add "$node"
ip -n "$node" link set lo up
plug "$node" ens192 n1-ens192
plug "$node" ens224 n1-ens224
ip -n "$node" addr add "$node_ip/25" dev ens192
ip -n "$node" route add default via "$net.129"

step "a fresh machine: writable overlays over /usr, /etc and /var in a private mount namespace"
# The process that keeps the namespaces open sleeps until cleanup kills it.
ip netns exec "$node" unshare --mount --propagation private bash -c '
  set -e
  for dir in usr etc var; do
    mkdir -p "$1/$dir/upper" "$1/$dir/work"
    mount -t overlay "fresh-$dir" -o "lowerdir=/$dir,upperdir=$1/$dir/upper,workdir=$1/$dir/work" "/$dir"
  done
  # /var/run is /run, which the VM shares between its tests.
  mount -t tmpfs fresh-run /run
  echo $$ >"$2"
  exec sleep infinity
' holder "$root" "$lab/machine.pid.new" >"$lab/machine.out" 2>&1 &
disown
wait_for 30 "the mount namespace" test -s "$lab/machine.pid.new"
mv "$lab/machine.pid.new" "$lab/machine.pid"
# The lab runs its scenarios one after another in one VM, and the pair
# scenarios leave /etc/seesaw and /var/log/seesaw behind in the guest's
# shared /etc and /var, empty, as the mount points of their nodes. They are
# no part of a fresh machine. rmdir removes them only while they are empty.
for path in /etc/seesaw /var/log/seesaw; do inside rmdir "$path" 2>/dev/null || true; done
for path in /usr/local/seesaw /usr/bin/seesaw /etc/seesaw /var/log/seesaw; do
  if inside test -e "$path"; then fail "$path exists before the installation"; fi
done
say "no /usr/local/seesaw, /usr/bin/seesaw, /etc/seesaw or /var/log/seesaw yet"

step "cargo xtask install --binaries $from"
# What `cargo xtask install` runs: cargo builds the xtask program and
# executes it with these arguments.
[[ -x $bin/xtask ]] || fail "$bin/xtask is missing; run the tests with \`cargo xtask test\`"
(cd "$repo" && inside "$bin/xtask" install --binaries "$from") >"$lab/install-1.out" 2>&1 ||
  fail "the installation failed"
sed 's/^/   | /' "$lab/install-1.out"

step "the installed files"
for name in "${daemons[@]}"; do
  path=/usr/local/seesaw/$name
  [[ $(mode "$path") == 755 ]] || fail "$path has mode $(mode "$path"), not 755"
  inside cmp -s "$path" "$from/$name" || fail "$path differs from $from/$name"
done
[[ $(mode /usr/bin/seesaw) == 755 ]] || fail "/usr/bin/seesaw has mode $(mode /usr/bin/seesaw)"
inside cmp -s /usr/bin/seesaw "$from/seesaw_cli" || fail "/usr/bin/seesaw is not seesaw_cli"
say "/usr/local/seesaw: $(inside ls /usr/local/seesaw | xargs) (0755); /usr/bin/seesaw (0755)"
for path in /etc/seesaw/watchdog.cfg /etc/seesaw/seesaw.cfg.example /etc/seesaw/cluster.pb.example \
  /etc/systemd/system/seesaw_watchdog.service /etc/modules-load.d/seesaw.conf; do
  [[ $(mode "$path") == 644 ]] || fail "$path is missing or has mode $(mode "$path" 2>&1)"
done
for pair in watchdog.cfg:etc/seesaw/watchdog.cfg seesaw.cfg.example:etc/seesaw/seesaw.cfg.example \
  cluster.pb.example:etc/seesaw/cluster.pb.example; do
  inside cmp -s "$repo/etc/${pair%%:*}" "/${pair#*:}" || fail "/${pair#*:} differs from etc/${pair%%:*}"
done
inside cmp -s "$repo/systemd/seesaw_watchdog.service" /etc/systemd/system/seesaw_watchdog.service ||
  fail "the installed unit differs from systemd/seesaw_watchdog.service"
say "/etc/seesaw: $(inside ls /etc/seesaw | xargs) (0644), the unit and /etc/modules-load.d/seesaw.conf"
inside test -d /var/log/seesaw || fail "/var/log/seesaw was not created"
[[ $(mode /var/log/seesaw) == 755 ]] || fail "/var/log/seesaw has mode $(mode /var/log/seesaw)"
say "/var/log/seesaw (0755)"
# The fresh machine's /usr is the guest's with an overlay on top.
if command -v getcap >/dev/null; then
  for name in seesaw_ha seesaw_healthcheck; do
    caps=$(inside getcap "/usr/local/seesaw/$name")
    [[ $caps == *cap_net_raw=ep* ]] || fail "/usr/local/seesaw/$name has no cap_net_raw: ${caps:-none}"
    say "$caps"
  done
elif [[ ${SEESAW_REQUIRE_ORACLES:-} == 1 ]]; then
  fail "getcap is not installed and SEESAW_REQUIRE_ORACLES=1 (apt-get install libcap2-bin)"
else
  say "getcap is not installed (Debian package libcap2-bin), so the capabilities go unchecked"
fi

step "the operator's seesaw.cfg and cluster.pb (the sample GKE manual-mode node $node_ip), checked"
inside cp "$fixtures/ini/gke-manual-seesaw.cfg" /etc/seesaw/seesaw.cfg
inside cp "$fixtures/cluster/gke-manual.pb" /etc/seesaw/cluster.pb
inside /usr/local/seesaw/seesaw_engine -check >"$lab/check.out" 2>&1 ||
  { cat "$lab/check.out"; fail "seesaw_engine -check rejected the configuration"; }
sed 's/^/   | /' "$lab/check.out"

step "the kernel modules of /etc/modules-load.d/seesaw.conf"
modules=$(inside grep -v '^#' /etc/modules-load.d/seesaw.conf | xargs)
# What systemd-modules-load does at boot.
inside modprobe -a $modules || fail "modprobe -a $modules failed"
say "loaded $modules"

step "seesaw_watchdog started as the installed unit starts it, but without systemd"
start_watchdog 1
started=$(now)
wait_for 120 "the watchdog to run the five daemons" all_running "$watchdog"
pids=$(children "$watchdog" | xargs)
say "after $(seconds_since "$started") s: seesaw_watchdog=$watchdog $pids"

step "the CLI and the ECU respond"
leader() { inside seesaw -c "show ha" | grep -Eq '^ *State: *LEADER'; }
wait_for 120 "\`seesaw -c \"show ha\"\` to report LEADER" leader
inside seesaw -c "show ha" | sed 's/^/   | /'
say "seesaw -c \"show ha\" reports LEADER $(seconds_since "$started") s after the start"
healthz() { ip netns exec "${prefix}gw" curl -sf --max-time 2 "http://$node_ip:10257/healthz"; }
healthy() { [[ $(healthz) == ok ]]; }
wait_for 60 "the ECU's /healthz to answer ok" healthy
say "the gateway got \"$(healthz)\" from http://$node_ip:10257/healthz"

step "the daemons keep running: the same PIDs 10 s later"
same_pids() { [[ $(children "$watchdog" | xargs) == "$pids" ]]; }
stays 10 "the daemons' PIDs ($pids)" same_pids
say "the same PIDs: $pids"

step "their logs in /var/log/seesaw"
for service in "${services[@]}"; do
  for log in "seesaw_$service.INFO" "seesaw_$service.log"; do
    inside test -s "/var/log/seesaw/$log" || fail "/var/log/seesaw/$log is missing or empty"
  done
done
inside test -s /var/log/seesaw/seesaw_watchdog.INFO || fail "/var/log/seesaw/seesaw_watchdog.INFO is missing or empty"
say "$(inside ls /var/log/seesaw | grep -E '^seesaw_[a-z]+\.(INFO|log)$' | xargs)"

step "a second install over the running node keeps the operator's edited files"
inside sed -i 's|^args = -log_dir=/var/log/seesaw$|& -v=1|' /etc/seesaw/watchdog.cfg
echo "# edited by the operator" | inside tee -a /etc/seesaw/cluster.pb.example >/dev/null
for file in watchdog.cfg cluster.pb.example seesaw.cfg cluster.pb; do
  inside cat "/etc/seesaw/$file" >"$lab/$file.before"
done
(cd "$repo" && inside "$bin/xtask" install --binaries "$from") >"$lab/install-2.out" 2>&1 ||
  fail "the second installation failed"
sed 's/^/   | /' "$lab/install-2.out"
for file in watchdog.cfg cluster.pb.example seesaw.cfg cluster.pb; do
  inside cmp -s "/etc/seesaw/$file" "$lab/$file.before" || fail "the installation changed /etc/seesaw/$file"
done
for file in watchdog.cfg cluster.pb.example; do
  grep -q "^kept your /etc/seesaw/$file;" "$lab/install-2.out" || fail "no note that /etc/seesaw/$file was kept"
  inside cmp -s "/etc/seesaw/$file.dist" "$repo/etc/$file" || fail "/etc/seesaw/$file.dist is not the new version"
done
grep -qx "/etc/seesaw/seesaw.cfg.example is already up to date" "$lab/install-2.out" ||
  fail "no note that seesaw.cfg.example is up to date"
if inside test -e /etc/seesaw/seesaw.cfg.example.dist; then fail "an unchanged file got a .dist copy"; fi
same_pids || fail "the second installation disturbed the daemons"
say "watchdog.cfg and cluster.pb.example kept, with .dist beside them; seesaw.cfg and cluster.pb untouched"

step "SIGTERM to the watchdog"
stop_watchdog

step "the watchdog starts again with the operator's watchdog.cfg"
start_watchdog 2
wait_for 120 "the watchdog to run the five daemons again" all_running "$watchdog"
pids=$(children "$watchdog" | xargs)
for entry in $pids; do
  grep -qz '^-v=1$' "/proc/${entry#*=}/cmdline" || fail "seesaw_${entry%=*} runs without the operator's -v=1"
done
say "every daemon runs with the operator's -v=1: $pids"
stop_watchdog

step "every step succeeded"
