#!/usr/bin/env bash
# Install what blockfarm needs on Debian 12, idempotently: Debian packages for
# the native executor and the host target, then the npm packages. Run as root
# (or with sudo); without root it only reports what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the executor's build (gcc, static liburing), the host
# target's userland (loop, mkfs/fsck for ext4, xfs, btrfs), fio for the bench.
PACKAGES=(gcc libc6-dev liburing-dev util-linux mount e2fsprogs xfsprogs btrfs-progs fio)

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
