#!/bin/bash
# A 1 KiB BLKDISCARD on a loop device with 512-byte blocks over a block device with 4 KiB
# sectors fails with EIO and an "I/O error ... op 0x3:(DISCARD)" kernel message.
# Run as root; creates and removes its own file and two loop devices.
set -u
img=$(mktemp /var/tmp/bf-discard.XXXXXX)
truncate -s 2M "$img"
lower=$(losetup --find --show --sector-size 4096 "$img") || exit 3
upper=$(losetup --find --show --sector-size 512 --offset 1048576 "$lower") || { losetup -d "$lower"; exit 3; }
for q in logical_block_size discard_granularity; do echo "$upper $q: $(cat /sys/block/${upper#/dev/}/queue/$q)"; done
blkdiscard -o 0 -l 1024 "$upper"; small=$?
blkdiscard -o 0 -l 4096 "$upper"; whole=$?
echo "1 KiB discard exit $small, 4 KiB discard exit $whole"
losetup -d "$upper"; losetup -d "$lower"; rm -f "$img"
[ "$small" = 0 ] && exit 0 || exit 1
