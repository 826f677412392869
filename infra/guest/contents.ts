/**
 * What goes into the guest image besides the agent and the executor: the
 * userland tools the layer kinds' set-up steps and checks run (copied from
 * this machine with their libraries: a bookworm host and a bookworm guest
 * userland are the same), and the kernel modules, preloaded at boot so that a
 * VM snapshot taken after boot has them all (modprobe costs ~100 ms each
 * under TCG; the first cryptsetup open would load the crypto modules itself
 * for ~1.4 s).
 */

/** Commands the guest runs, looked up on this machine's PATH (sbin included). */
export const GUEST_TOOLS: readonly string[] = [
  // a real shell (dash): Debian's busybox would run its own applets ahead of PATH
  'sh', 'dash',
  // util-linux, mount, coreutils
  'mount', 'umount', 'losetup', 'blockdev', 'blkdiscard', 'wipefs', 'dmesg', 'findmnt',
  'truncate', 'fallocate', 'mkdir', 'rmdir', 'rm', 'cat', 'ls', 'dd', 'sync', 'sleep', 'uname', 'stat', 'find', 'cmp', 'head', 'tail', 'od', 'wc', 'grep', 'tr', 'echo', 'env', 'true', 'false', 'readlink',
  // device mapper, dm-crypt, dm-integrity, md
  'dmsetup', 'cryptsetup', 'integritysetup', 'mdadm',
  // filesystems: mkfs and fsck
  'mke2fs', 'mkfs.ext4', 'e2fsck', 'fsck.ext4', 'tune2fs', 'dumpe2fs',
  'mkfs.xfs', 'xfs_repair', 'xfs_db', 'xfs_io',
  'mkfs.btrfs', 'btrfs', 'btrfsck',
  'mkfs.gfs2', 'fsck.gfs2',
  // kmod
  'modprobe', 'rmmod', 'lsmod', 'insmod', 'modinfo', 'kmod',
];

/** Configuration files copied from this machine when present. */
export const GUEST_ETC: readonly string[] = ['/etc/mke2fs.conf', '/etc/e2scrub.conf'];

/**
 * Modules the agent loads at boot, in this order (virtio first: the agent's
 * port and the disks hang off them). Names missing from a kernel are left
 * out of its image and listed as missing in the manifest; a layer that needs
 * one is then unsupported on that kernel.
 */
export const PRELOAD_MODULES: readonly string[] = [
  'virtio_pci', 'virtio_blk', 'virtio_console',
  'loop',
  'dm_mod', 'dm_crypt', 'dm_integrity', 'dm_snapshot', 'dm_flakey', 'dm_dust', 'dm_bufio',
  'md_mod', 'raid0', 'raid1',
  'sd_mod', 't10_pi', 'crc64_rocksoft', 'crc_t10dif',
  'ext4', 'xfs', 'btrfs', 'gfs2',
  // what dm-crypt and dm-integrity ask the crypto API for
  'aesni_intel', 'aes_generic', 'xts', 'ecb', 'cbc', 'authenc', 'gcm', 'ghash_clmulni_intel', 'ghash_generic', 'chacha20poly1305',
  'chacha_x86_64', 'poly1305_x86_64', 'hmac', 'sha256_ssse3', 'sha256_generic', 'crc32c_intel', 'crc32c_generic', 'crc32_pclmul',
  'cryptd', 'crypto_simd', 'essiv',
];

/** In the image but not loaded at boot: modules a case loads with its own parameters. */
export const ON_DEMAND_MODULES: readonly string[] = ['scsi_debug', 'null_blk'];
