#!/usr/bin/env bash
# Install what blockfarm needs on Debian 12, idempotently: Debian packages for
# the native executor and the host target, then the npm packages. Run as root
# (or with sudo); without root it only reports what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the executor's build (gcc, static liburing), the host
# target's userland (loop, mkfs/fsck for ext4, xfs, btrfs), fio for the bench;
# for the qemu target: QEMU, apt's kernel tools (kmod's depmod; xz and lz4 for
# the compressed kernels: generic and rt use xz, cloud lz4) and the
# guest image's userland, copied from this machine with its libraries (a real
# /bin/sh = dash, dmsetup, cryptsetup/integritysetup, mdadm, mkfs and fsck for
# ext4, xfs, btrfs and gfs2). No busybox: Debian's runs its own applets ahead
# of PATH, so the guest would silently run busybox losetup.
# redis-server: the farm's queues (`npm start` runs a private instance of it on a
# free port; the package's own system service is not used by blockfarm).
# chromium: the dashboard's browser test (headless, driven by playwright-core).
# `blockfarm kernels build`: make, bc, bison, flex, libelf-dev, libssl-dev and
# Debian's kernel source tarball (linux-source-6.1: /usr/src/linux-source-6.1.tar.xz).
PACKAGES=(gcc libc6-dev liburing-dev util-linux mount e2fsprogs xfsprogs btrfs-progs fio
  qemu-system-x86 qemu-utils dash kmod dmsetup cryptsetup-bin mdadm gfs2-utils xz-utils lz4 cpio
  redis-server chromium
  make bc bison flex libelf-dev libssl-dev linux-source-6.1)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "infra/setup.sh: missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
    exit 2
  fi
  echo "infra/setup.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error </dev/null
fi

# The qemu target's default kernel: BLOCKFARM_KERNEL, else 6.1.0-56-amd64, else
# the newest generic amd64 kernel the archive has. Fetched once into
# .cache/kernels (or $BLOCKFARM_CACHE/kernels); a fetched kernel is kept.
if [[ $(id -u) -eq 0 ]]; then
  kernel=${BLOCKFARM_KERNEL:-6.1.0-56-amd64}
  has_candidate() { [[ $(apt-cache policy "linux-image-$1" 2>/dev/null) == *'Candidate: '[0-9]* ]]; }
  if ! has_candidate "$kernel"; then
    apt-get update -qq </dev/null >/dev/null || true
  fi
  if ! has_candidate "$kernel"; then
    newest=$(apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-amd64$' | awk '{print $1}' | sed 's/^linux-image-//' | sort -V | tail -n 1 || true)
    echo "infra/setup.sh: kernel $kernel is not in the archive; using ${newest:-none}" >&2
    kernel=$newest
  fi
  if [[ -n $kernel ]]; then
    node bin/blockfarm.js kernels fetch "$kernel" >/dev/null
  else
    echo "infra/setup.sh: no linux-image package in the apt archive: the qemu target has no kernel" >&2
    exit 4
  fi
fi
