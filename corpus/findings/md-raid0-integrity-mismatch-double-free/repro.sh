#!/bin/bash
# blockfarm reproducer: kernel BUG in __kmem_cache_free
# signature kernel-bug-in-kmem-cache-free-53d8e38e505c
# seen on: qemu
# case: gen-309-18-min; generated 2026-11-21T19:55:31Z
#
# WARNING: this script builds a stack of loop devices (and dm/md devices if the case has them),
# mounts filesystems, and drives the kernel into a state where it misbehaved. It may corrupt
# data, hang, or crash the machine it runs on. Run it as root in a VM or on a scratch machine.
#
# Usage: sudo ./repro.sh          (repro.c must be next to this script)
# Needs: gcc and liburing-dev, and dmesg, losetup, mdadm, modprobe, mount, mountpoint, truncate, umount.
# Exit:  0 the kernel did what the model allows, 1 it did not (or a check or the kernel log
#        says so), 2 not root, 3 a tool is missing, repro.c does not build or a set-up step failed.
# Set REPRO_TMP to put the work directory elsewhere than /var/tmp.
set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
say() { printf "repro.sh: %s\n" "$*" >&2; }
fail() { say "set-up step failed: $*"; exit 3; }
[ "$(id -u)" = 0 ] || { say "needs root (loop devices, mkfs, mount)"; exit 2; }
for t in dmesg gcc losetup mdadm modprobe mount mountpoint truncate umount; do
  command -v "$t" >/dev/null 2>&1 || { say "$t is not installed"; exit 3; }
done
[ -f "$HERE/repro.c" ] || { say "repro.c is not next to repro.sh"; exit 3; }

# The blockfarm executor's set-up helpers, in shell.
bf_calc() { local acc=$1; shift; while [ $# -ge 2 ]; do case $1 in
  +) acc=$((acc + $2));; -) acc=$((acc - $2));; '*') acc=$((acc * $2));; /) acc=$((acc / $2));; %) acc=$((acc % $2));;
  min) [ "$2" -lt "$acc" ] && acc=$2;; max) [ "$2" -gt "$acc" ] && acc=$2;; *) return 2;; esac; shift 2; done; echo "$acc"; }
bf_field() { local n=$1 line; shift; line=$("$@") || return $?; line=${line%%$'\n'*}; local -a f; read -r -a f <<< "$line"; [ "$n" -ge 1 ] && [ "$n" -le "${#f[@]}" ] || return 1; echo "${f[n-1]}"; }
bf_if_exists() { local p=$1; shift; if [ -e "$p" ] || [ -L "$p" ]; then "$@"; fi; }
bf_scsi_debug_dev() { local ms=${1:-10000} d; while [ "$ms" -gt 0 ]; do for d in /sys/bus/pseudo/drivers/scsi_debug/adapter*/host*/target*/*:*/block/*; do [ -e "$d" ] && [ -e "/dev/${d##*/}" ] && { echo "/dev/${d##*/}"; return 0; }; done; sleep 0.1; ms=$((ms - 100)); done; return 1; }

WORK=$(mktemp -d "${REPRO_TMP:-/var/tmp}/blockfarm-repro.XXXXXX") || exit 3
PFX="bfr-$$-"
UNDO=()
cleanup() {
  local rc=$?
  set +e
  local i
  for ((i = ${#UNDO[@]} - 1; i >= 0; i--)); do "${UNDO[i]}" || say "undo ${UNDO[i]} failed"; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

say "building repro.c"
gcc -O2 -o "$WORK/repro" "$HERE/repro.c" -luring -lpthread || { say "repro.c does not build (gcc, liburing-dev?)"; exit 3; }

# A marker in the kernel log: what the kernel says after it is shown at the end.
MARK="blockfarm-repro $$ $(date +%s)"
echo "$MARK" > /dev/kmsg 2>/dev/null || true

# ---- set-up (bottom-up) ----
# step 1: scsi_debug sd0
undo_1() { modprobe -r scsi_debug; }
say 'scsi_debug sd0'
if ! modprobe scsi_debug dev_size_mb=78 sector_size=512 physblk_exp=0 dif=1 dix=1 guard=0 num_tgts=1 max_luns=1 add_host=1; then fail 'scsi_debug sd0'; fi
UNDO+=(undo_1)

# step 2: disk of sd0
say 'disk of sd0'
if ! OUT=$(bf_scsi_debug_dev 30000); then fail 'disk of sd0'; fi
BF_dev_sd0=${OUT%%$'\n'*}

# step 3: image for disk md0-m1
say 'image for disk md0-m1'
if ! truncate -s 4194304 "${WORK}"/disk-md0-m1.img; then fail 'image for disk md0-m1'; fi

# step 4: disk md0-m1
undo_4() { losetup -d "${BF_dev_md0_m1}"; }
say 'disk md0-m1'
if ! OUT=$(losetup --find --show --sector-size 512 "${WORK}"/disk-md0-m1.img); then fail 'disk md0-m1'; fi
BF_dev_md0_m1=${OUT%%$'\n'*}
UNDO+=(undo_4)

# step 5: md md0
undo_5() { mdadm --stop /dev/md/"${PFX}"md0; }
say 'md md0'
if ! mdadm --create /dev/md/"${PFX}"md0 --run --level=0 --raid-devices=2 --metadata=1.2 --chunk=4 "${BF_dev_sd0}" "${BF_dev_md0_m1}"; then fail 'md md0'; fi
UNDO+=(undo_5)

# ---- the program ----
"$WORK/repro" md0=/dev/md/"${PFX}"md0
RC=$?
CHECKS_FAILED=0

# ---- post-run checks ----

# ---- the kernel log since the marker ----
KLOG=$(dmesg 2>/dev/null | sed -n "/$MARK/,\$p" | tail -n +2)
REPORTS=$(printf '%s\n' "$KLOG" | grep -E 'WARNING:|BUG:|Oops|KASAN|UBSAN|general protection fault|possible (circular|recursive) locking|inconsistent lock state|not cleared|INFO: task .* blocked|soft lockup|rcu.*stall|Kernel panic|I/O error|critical medium error|EXT4-fs error|XFS .*(error|corrupt|shut)|BTRFS (error|critical)|integrity|AEAD ERROR' || true)
if [ -n "$REPORTS" ]; then say "the kernel logged:"; printf '%s\n' "$KLOG" | tail -n 200 >&2; fi
if [ "$RC" = 0 ] && { [ "$CHECKS_FAILED" = 1 ] || [ -n "$REPORTS" ]; }; then RC=1; fi
say "exit $RC"
exit "$RC"
