#!/bin/sh
# Reproduces the EIO on a kernel that has it (Debian 6.1.0-56-amd64 = 6.1.192, as root):
#   repro.sh /dev/DISK_WITH_4K_LOGICAL_SECTORS   (its content is destroyed)
# e.g. in QEMU: -device virtio-blk-pci,...,logical_block_size=4096,physical_block_size=4096
set -e
DISK=$1
mkfs.ext4 -q -F -b 4096 -E nodiscard "$DISK"
mkdir -p /mnt/repro && mount "$DISK" /mnt/repro
truncate -s 32M /mnt/repro/back.img
L=$(losetup --find --show --direct-io=on --sector-size 512 /mnt/repro/back.img)
echo "$L: logical block size $(cat /sys/block/${L#/dev/}/queue/logical_block_size), dio $(cat /sys/block/${L#/dev/}/loop/dio)"
dd if=/dev/zero of="$L" bs=512 seek=1 count=2 oflag=direct && echo "512-byte O_DIRECT write: ok" || echo "512-byte O_DIRECT write: FAILED"
losetup -d "$L"
# The same loop device, direct IO asked for after attaching: refused (EINVAL), and IO works.
L=$(losetup --find --show --sector-size 512 /mnt/repro/back.img)
losetup --direct-io=on "$L" || true
dd if=/dev/zero of="$L" bs=512 seek=1 count=2 oflag=direct && echo "after LOOP_SET_DIRECT_IO: ok"
losetup -d "$L"
umount /mnt/repro
