#!/bin/bash
# The kernel lab: runs one command as root in a throw-away QEMU VM that boots
# Debian's stock kernel, which has IPVS, dummy, 8021q, veth and macvlan as modules.
# `cargo xtask vm` is the supported entry point; it sets SEESAW_LAB_CACHE and
# shares the repository.
#
#   vm.sh [-p] [-s DIR]... [-w DIR]... [--] COMMAND [ARG]...
#     -s DIR   share host DIR read-only at the same path in the guest (9p)
#     -w DIR   the same, read-write (the guest writes as root on the host)
#     -p       only install the host packages and build the image, boot nothing
#
# The guest is a busybox initramfs on tmpfs with the host's /usr mounted read-only,
# so host tools and host-built glibc binaries run unchanged. It has no network
# device, so no packet leaves the VM. COMMAND runs under bash with stdin from
# /dev/null, in the host's $PWD when a share makes that path visible, else in /.
# Its stdout and stderr arrive merged on stdout. The exit status is COMMAND's,
# or 124 when SEESAW_LAB_TIMEOUT ran out, or 125 when the VM ended without
# reporting one (a kernel panic, for example).
#
# Environment:
#   SEESAW_LAB_CACHE    image cache directory (required)
#   SEESAW_LAB_ACCEL    auto (default), kvm or tcg
#   SEESAW_LAB_MEM      guest memory in MiB (512)
#   SEESAW_LAB_SMP      guest CPUs (1)
#   SEESAW_LAB_TIMEOUT  seconds before the VM is killed (600)
#   SEESAW_LAB_MODULES  modules loaded at boot (ip_vs); others load on first use
#   SEESAW_LAB_APPEND   extra kernel command-line arguments
#   SEESAW_LAB_VERBOSE  1: print the guest console after the run
#   SEESAW_LAB_KEEP     1: keep the run directory (cmd, config, out, status, console.log)
set -euo pipefail

CACHE=${SEESAW_LAB_CACHE:?SEESAW_LAB_CACHE must name the image cache directory}
MODULES=${SEESAW_LAB_MODULES:-ip_vs}
SELF=$(readlink -f "${BASH_SOURCE[0]}")
# The image depends on nothing but this file, so any edit here rebuilds it.
KEY=$(sha256sum "$SELF" | cut -c1-12)
IMG=$CACHE/img-$KEY

log() { echo "lab: $*" >&2; }
usage() { sed -n '6,10s/^# \{0,1\}//p' "$SELF" >&2; exit 2; }

# need_pkg COMMAND PACKAGE: install PACKAGE with apt-get unless COMMAND exists.
# A COMMAND given as an absolute path must exist at that path, because the
# guest mounts only the host's /usr, not the host's $PATH (a python3 of pyenv,
# for example).
need_pkg() {
  case $1 in
    /*) [ -x "$1" ] && return ;;
    *) command -v "$1" >/dev/null && return ;;
  esac
  if [ "$(id -u)" != 0 ]; then
    log "$1 not found; install the Debian package $2 as root (apt-get install $2)"
    exit 1
  fi
  log "installing $2"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "$2" >/dev/null ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$2" >/dev/null; }
}

# download PACKAGE...: apt-get download into $PWD, refreshing the package lists
# once when a package is unknown. The sandbox user is root because the _apt user
# cannot write into a directory that root created.
download() {
  apt-get download -q -o APT::Sandbox::User=root "$@" >/dev/null ||
    { apt-get update -q >/dev/null && apt-get download -q -o APT::Sandbox::User=root "$@" >/dev/null; }
}

# ---- guest PID 1 (busybox ash) ----------------------------------------------------
GUEST_INIT='#!/bb/sh
export PATH=/bb
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs shm /dev/shm
mount -t tmpfs tmp /tmp; mount -t tmpfs run /run; mkdir -p /run/netns
# The kernel runs this program to load modules on demand (rtnl-link-*, ip_vs_*).
echo /bb/modprobe >/proc/sys/kernel/modprobe
modprobe -a virtio_pci 9pnet_virtio 9p
p9() { mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,$3 "$1" "$2"; }
p9 lab /lab cache=none
p9 usr /usr ro,cache=loose
p9 modules /lib/modules ro,cache=loose
say() { echo "lab: $*" >>/lab/out; }
share() { mkdir -p "$2" && p9 "$1" "$2" "$3" || say "cannot mount $2"; }
. /lab/config
for m in $modules; do modprobe $m || say "modprobe $m failed"; done
ip link set lo up; hostname seesaw-lab
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root SEESAW_LAB=1
cd "$cwd" 2>/dev/null || cd /
/usr/bin/bash /lab/cmd </dev/null >>/lab/out 2>&1
# 9p writes are synchronous, so the status reaches the host before the power-off.
echo $? >/lab/status
poweroff -f
'

# build: fetch the Debian packages and write $IMG/{vmlinux,initrd.cpio,modules/}.
build() {
  local b=$CACHE/build.$$ kpkg kver m f
  rm -rf "$b"; mkdir -p "$b/debs" "$b/root" "$b/i"
  cd "$b/debs"
  download linux-image-amd64
  # The meta package depends on exactly one versioned kernel package.
  kpkg=$(dpkg-deb -f linux-image-amd64_*.deb Depends | sed -E 's/ \(= (.*)\)/=\1/')
  download "$kpkg" busybox-static ipvsadm libnl-3-200 libnl-genl-3-200 libpopt0
  for f in *.deb; do dpkg-deb -x "$f" "$b/root"; done
  cd "$b"; rm -rf debs
  kver=$(ls root/lib/modules); local bb=root/bin/busybox
  # A VM without NICs, sound or GPUs never loads these drivers, and they are 200 MB.
  (cd "root/lib/modules/$kver/kernel" &&
   rm -rf sound drivers/{gpu,media,usb,infiniband,iio,staging,net/ethernet,net/wireless})
  if command -v depmod >/dev/null; then depmod -b root "$kver"; else $bb depmod -b root "$kver"; fi

  local i=$b/i
  mkdir -p $i/{bb,bin,sbin,dev,proc,sys,tmp,run,root,etc,lab,usr,mnt,var/tmp,lib/x86_64-linux-gnu,lib64}
  # Host-built glibc binaries find their loader through the host's /usr.
  ln -s /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 $i/lib64/
  ln -s ../run $i/var/run; ln -s /proc/mounts $i/etc/mtab
  cp $bb $i/bb/busybox
  for m in $($bb --list); do [ "$m" = busybox ] || ln -s busybox "$i/bb/$m"; done
  # ipvsadm and the libraries the host may lack. The guest's /lib comes before
  # /usr/lib in the loader's default path, so these win over the host's copies.
  cp root/sbin/ipvsadm* $i/sbin/
  cp -a root/lib/x86_64-linux-gnu/*.so* root/usr/lib/x86_64-linux-gnu/*.so* $i/lib/x86_64-linux-gnu/
  # /bin and /sbin point at the host's tools, so #!/bin/bash and /sbin/ip work.
  # Busybox fills in the commands the host lacks, such as ping, modprobe and vconfig.
  ln -s /usr/bin/* -t $i/bin 2>/dev/null || true
  ln -s /usr/sbin/* -t $i/sbin 2>/dev/null || true
  for m in $($bb --list-full); do
    case $m in sbin/*|usr/sbin/*) f=$i/sbin/${m##*/} ;; *) f=$i/bin/${m##*/} ;; esac
    [ -e "$f" ] || [ -L "$f" ] || ln -s /bb/busybox "$f"
  done
  for f in passwd group protocols services ethertypes nsswitch.conf; do cp /etc/$f $i/etc/ 2>/dev/null || true; done
  if [ -d /etc/iproute2 ]; then cp -r /etc/iproute2 $i/etc/; fi
  printf '127.0.0.1 localhost seesaw-lab\n::1 localhost\n' >$i/etc/hosts

  # The initramfs carries only the virtio and 9p modules, plus their dependencies
  # from modules.dep, because the rest of the tree is mounted over 9p.
  local want="kernel/drivers/virtio/virtio_pci.ko kernel/net/9p/9pnet_virtio.ko kernel/fs/9p/9p.ko" all=""
  while [ -n "$want" ]; do
    set -- $want; want=""
    for m; do
      case " $all " in *" $m "*) continue ;; esac
      all="$all $m"; want="$want $(grep "^$m:" "root/lib/modules/$kver/modules.dep" | cut -d: -f2)"
    done
  done
  for m in $all; do
    mkdir -p "$i/lib/modules/$kver/${m%/*}"; cp "root/lib/modules/$kver/$m" "$i/lib/modules/$kver/$m"
    grep "^$m:" "root/lib/modules/$kver/modules.dep" >>"$i/lib/modules/$kver/modules.dep"
  done
  printf '%s' "$GUEST_INIT" >$i/init; chmod 755 $i/init
  # Uncompressed, because unpacking is then fastest under emulation.
  (cd $i && find . | ../$bb cpio -o -H newc 2>/dev/null) >initrd.cpio
  mkdir -p modules; mv "root/lib/modules/$kver" modules/; mv root/boot/vmlinuz-* vmlinuz

  # QEMU boots the ELF vmlinux directly through its PVH entry point. Unpacking the
  # bzImage's xz payload once here saves about 2.7 s of decompression per boot
  # under TCG. If unpacking fails, the bzImage is kept and boots more slowly.
  m=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' vmlinuz | head -1 | cut -d: -f1)
  tail -c +$((${m:-0} + 1)) vmlinuz | xz -dc --single-stream >vmlinux 2>/dev/null || true
  if [ "$(head -c 4 vmlinux)" = $'\x7fELF' ]; then rm vmlinuz; else rm -f vmlinux; mv vmlinuz vmlinux; fi
  rm -rf root i
  # Images of older versions of this script that were unused for two days.
  find "$CACHE" -maxdepth 1 -name 'img-*' -mtime +1 -exec rm -rf {} +
  mv "$b" "$IMG"
}

# ---- arguments --------------------------------------------------------------------
shares=() prepare_only=
while getopts "ps:w:h" o; do
  case $o in
    p) prepare_only=1 ;;
    s|w) d=$(readlink -f "$OPTARG"); [ -d "$d" ] || { log "not a directory: $OPTARG"; exit 2; }
         shares+=("$d:$([ "$o" = s ] && echo ro || echo rw)") ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ -n "$prepare_only" ] || [ $# -gt 0 ] || usage
# Parents mount before their children, so a read-write DIR can sit inside a
# read-only share. A parent path is always shorter than its child's.
if [ ${#shares[@]} -gt 0 ]; then
  mapfile -t shares < <(for s in "${shares[@]}"; do printf '%d %s\n' "${#s}" "$s"; done | sort -n | cut -d' ' -f2-)
fi

run='' qpid=''
cleanup() {
  if [ -n "$qpid" ]; then kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null; fi
  if [ -n "$run" ]; then
    if [ "${SEESAW_LAB_KEEP:-}" = 1 ]; then log "run directory kept: $run"; else rm -rf "$run"; fi
  fi
}
trap cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM

# ---- host side: tools and the cached image -----------------------------------------
[ "$(uname -m)" = x86_64 ] || { log "the lab needs an x86_64 host, not $(uname -m)"; exit 1; }
need_pkg qemu-system-x86_64 qemu-system-x86
need_pkg xz xz-utils
# The tools that the lab's scenarios run in the guest from the host's /usr.
# pair.sh runs ip, mount, unshare, sysctl and diff, and python3 for the
# backends, the client and the prober. seesaw_ncc runs iptables. The guest
# has no /etc/alternatives, so the NCC runs iptables-nft, not iptables.
# The image carries its own ipvsadm, so the host needs none.
need_pkg /usr/bin/ip iproute2
need_pkg /usr/bin/mount mount
need_pkg /usr/bin/unshare util-linux
need_pkg /usr/sbin/sysctl procps
need_pkg /usr/bin/diff diffutils
need_pkg /usr/bin/python3 python3
need_pkg /usr/sbin/iptables-nft iptables
mkdir -p "$CACHE"
if [ ! -f "$IMG/initrd.cpio" ]; then
  exec 9>"$CACHE/.lock"; flock 9
  if [ ! -f "$IMG/initrd.cpio" ]; then
    log "building the VM image in $IMG"
    rm -rf "$CACHE"/build.*
    (build)
  fi
  exec 9>&-
fi
touch "$IMG"
[ -z "$prepare_only" ] || exit 0

accel=${SEESAW_LAB_ACCEL:-auto}
# A /dev/kvm without VT-x or AMD-V (a PVM host, for example) cannot run a stock
# kernel: it crawls and then fails on an emulation error, so auto needs the flags.
if [ "$accel" = auto ]; then
  if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel=kvm; else accel=tcg; fi
fi
# qemu64 boots about 0.3 s faster than max under TCG.
if [ "$accel" = kvm ]; then cpu=host; else cpu=qemu64; fi

run=$(mktemp -d "${TMPDIR:-/tmp}/seesaw-lab.XXXXXX")
printf '%q ' "$@" >"$run/cmd"; : >"$run/out"
{ printf 'modules=%q\ncwd=%q\n' "$MODULES" "$PWD"
  n=0
  for s in "${shares[@]}"; do
    # Read-only shares may cache, which makes repeated exec about four times faster.
    printf 'share s%d %q %s\n' $n "${s%:*}" "$([ "${s##*:}" = ro ] && echo ro,cache=loose || echo rw)"
    n=$((n + 1))
  done
} >"$run/config"

fs=(-virtfs "local,path=$run,mount_tag=lab,security_model=none"
    -virtfs "local,path=/usr,mount_tag=usr,security_model=none,readonly=on,multidevs=remap"
    -virtfs "local,path=$IMG/modules,mount_tag=modules,security_model=none,readonly=on")
n=0
for s in "${shares[@]}"; do
  ro=''; [ "${s##*:}" = ro ] && ro=,readonly=on
  fs+=(-virtfs "local,path=${s%:*},mount_tag=s$n,security_model=none,multidevs=remap$ro")
  n=$((n + 1))
done

timeout -k 5 "${SEESAW_LAB_TIMEOUT:-600}" qemu-system-x86_64 -nodefaults -no-user-config -display none \
  -no-reboot -accel "$accel" -cpu "$cpu" -m "${SEESAW_LAB_MEM:-512}" -smp "${SEESAW_LAB_SMP:-1}" \
  -kernel "$IMG/vmlinux" -initrd "$IMG/initrd.cpio" \
  -append "console=ttyS0 panic=-1 quiet cryptomgr.notests mitigations=off ${SEESAW_LAB_APPEND:-}" \
  -serial "file:$run/console.log" "${fs[@]}" </dev/null >"$run/qemu.log" 2>&1 &
qpid=$!
tail -s 0.1 -n +1 -f --pid=$qpid "$run/out" &
rc=0; wait $qpid || rc=$?
qpid=''; wait

if [ "${SEESAW_LAB_VERBOSE:-}" = 1 ]; then log "guest console:"; cat "$run/console.log" "$run/qemu.log" >&2; fi
if [ -s "$run/status" ]; then exit "$(cat "$run/status")"; fi
if [ $rc = 124 ]; then
  log "timed out after ${SEESAW_LAB_TIMEOUT:-600} s; raise SEESAW_LAB_TIMEOUT for longer commands"
else
  log "the VM ended without reporting an exit status (qemu exit status $rc)"
fi
tail -n 30 "$run/console.log" "$run/qemu.log" >&2
if [ $rc = 124 ]; then exit 124; else exit 125; fi
