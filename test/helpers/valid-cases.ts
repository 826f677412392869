/**
 * A handful of valid cases that between them use every layer kind and every
 * op kind of the case language. The schema tests round-trip them and check
 * the coverage against LAYER_KINDS and OP_KINDS (so a new kind without a
 * valid case here fails a test); the malformed-case property test breaks them.
 *
 * They are written as a person would: defaults left out.
 */
import type { CaseInput } from '../../model/index.ts';

const MiB = 1024 * 1024;

type Layers = CaseInput['stack']['layers'];
type Ops = CaseInput['program']['threads'][number]['ops'];

function mk(name: string, layers: Layers, ...threads: Ops[]): CaseInput {
  return {
    format: 'blockfarm-case/1',
    name,
    seed: 4242,
    stack: { layers },
    program: { threads: threads.map((ops) => ({ ops })) },
  };
}

export const VALID_CASES: Record<string, CaseInput> = {
  'raw-disk': mk(
    'raw-disk',
    [{ id: 'd', kind: 'disk', size: 16 * MiB, logicalBlockSize: 512, physicalBlockSize: 4096 }],
    [
      { kind: 'write', id: 1, target: 'd', offset: 0, length: 8192, via: 'io_uring', direct: true, mustSucceed: true },
      { kind: 'read', id: 2, target: 'd', offset: 0, length: 8192, via: 'pvec', vectors: 2 },
      { kind: 'discard', id: 3, target: 'd', offset: 1 * MiB, length: 65536, mode: 'zeroout' },
      { kind: 'fallocate', id: 4, target: 'd', mode: 'zero-range', offset: 0, length: 4096 },
      { kind: 'flush', id: 5, target: 'd' },
      { kind: 'fsync', id: 6, target: 'd' },
      { kind: 'drop-caches', id: 7 },
      { kind: 'sleep', id: 8, ms: 5 },
      { kind: 'read', id: 9, target: 'd', offset: 0, length: 4096, via: 'io_uring', nowait: true, buffer: { placement: 'anon', touchedPages: 1 } },
    ],
  ),
  'ext4-file-ops': mk(
    'ext4-file-ops',
    [
      { id: 'd', kind: 'disk', size: 64 * MiB },
      { id: 'fs', kind: 'fs', on: 'd', type: 'ext4', mountOptions: ['noatime'] },
      { id: 'f', kind: 'file', on: 'fs', name: 'data', size: 1 * MiB },
      { id: 'g', kind: 'file', on: 'fs', name: 'buf', size: 65536, prealloc: true },
    ],
    [
      { kind: 'write', id: 1, target: 'f', offset: 0, length: 16384, buffer: { placement: 'mmap', file: 'g', offset: 0 } },
      { kind: 'mmap-write', id: 2, target: 'f', offset: 16384, length: 4096 },
      { kind: 'mmap-read', id: 3, target: 'f', offset: 0, length: 8192 },
      { kind: 'msync', id: 4, target: 'f', mode: 'sync' },
      { kind: 'fallocate', id: 5, target: 'f', mode: 'punch-hole', offset: 4096, length: 4096 },
      { kind: 'fallocate', id: 6, target: 'f', mode: 'collapse-range', offset: 8192, length: 4096 },
      { kind: 'truncate', id: 7, target: 'f', size: 500000 },
      { kind: 'fsync', id: 8, target: 'f', dataOnly: true },
      { kind: 'sync-file-range', id: 9, target: 'f', offset: 0, length: 0, flags: 'write' },
      { kind: 'remount', id: 10, target: 'fs', mode: 'cycle' },
      { kind: 'read', id: 11, target: 'f', offset: 0, length: 65536, direct: true, buffer: { placement: 'anon', touchedPages: 1 } },
    ],
  ),
  'loop-dio-xfs': mk(
    'loop-dio-xfs',
    [
      { id: 'd', kind: 'disk', size: 512 * MiB, logicalBlockSize: 4096 },
      { id: 'fs', kind: 'fs', on: 'd', type: 'xfs' },
      { id: 'f', kind: 'file', on: 'fs', name: 'backing', size: 64 * MiB },
      { id: 'lo', kind: 'loop', on: 'f', directIo: true, logicalBlockSize: 4096 },
    ],
    [
      { kind: 'write', id: 1, target: 'lo', offset: 0, length: 65536, direct: true, mustSucceed: true },
      { kind: 'loop-set-direct-io', id: 2, target: 'lo', on: false },
      { kind: 'loop-set-block-size', id: 3, target: 'lo', size: 4096 },
      { kind: 'read', id: 4, target: 'lo', offset: 0, length: 65536, direct: true },
    ],
  ),
  'md-raid': mk(
    'md-raid',
    [
      { id: 'a', kind: 'disk', size: 32 * MiB },
      { id: 'b', kind: 'disk', size: 32 * MiB },
      { id: 'c', kind: 'disk', size: 32 * MiB },
      { id: 'e', kind: 'disk', size: 32 * MiB },
      { id: 'r1', kind: 'md', level: 1, members: ['a', 'b'] },
      { id: 'r0', kind: 'md', level: 0, members: ['c', 'e'], chunk: 4096 },
    ],
    [
      { kind: 'write', id: 1, target: 'r1', offset: 0, length: 65536 },
      { kind: 'md-fail', id: 2, target: 'r1', member: 1 },
      { kind: 'read', id: 3, target: 'r1', offset: 0, length: 65536 },
      { kind: 'write', id: 4, target: 'r0', offset: 1536, length: 10240, direct: true },
    ],
  ),
  'dm-targets': mk(
    'dm-targets',
    [
      { id: 'd1', kind: 'disk', size: 16 * MiB },
      { id: 'd2', kind: 'disk', size: 16 * MiB },
      { id: 'd3', kind: 'disk', size: 16 * MiB },
      { id: 'd4', kind: 'disk', size: 16 * MiB },
      { id: 'd5', kind: 'disk', size: 16 * MiB },
      { id: 'lin', kind: 'dm-linear', on: 'd1', offset: 1 * MiB, length: 8 * MiB },
      { id: 'str', kind: 'dm-stripe', members: ['d2', 'd3'], chunk: 65536 },
      { id: 'fl', kind: 'dm-flakey', on: 'd4', upSeconds: 1, downSeconds: 1, mode: 'drop-writes' },
      { id: 'du', kind: 'dm-dust', on: 'd5', blockSize: 4096, badBlocks: [10, 11] },
      { id: 'whole', kind: 'dm-linear', on: 'str' },
    ],
    [
      { kind: 'dm-suspend', id: 1, target: 'whole' },
      { kind: 'dm-reload', id: 2, target: 'whole', as: 'linear' },
      { kind: 'dm-resume', id: 3, target: 'whole' },
      { kind: 'write', id: 4, target: 'whole', offset: 0, length: 4096 },
      { kind: 'write', id: 5, target: 'lin', offset: 0, length: 4096 },
      { kind: 'write', id: 6, target: 'fl', offset: 0, length: 4096 },
      { kind: 'read', id: 7, target: 'du', offset: 40960, length: 4096 },
    ],
  ),
  'aead-crypt-integrity': mk(
    'aead-crypt-integrity',
    [
      { id: 'd', kind: 'disk', size: 32 * MiB },
      { id: 'ig', kind: 'dm-integrity', on: 'd', internalHash: 'none', tagSize: 28, mode: 'journal' },
      { id: 'cr', kind: 'dm-crypt', on: 'ig', integrity: 'gcm' },
      { id: 'd2', kind: 'disk', size: 16 * MiB },
      { id: 'ig2', kind: 'dm-integrity', on: 'd2', internalHash: 'crc32c', tagSize: 4, wipe: true },
    ],
    [
      { kind: 'write', id: 1, target: 'cr', offset: 0, length: 8192 },
      { kind: 'read', id: 2, target: 'cr', offset: 0, length: 8192, mustSucceed: false },
      { kind: 'corrupt', id: 3, target: 'd', offset: 4 * MiB, length: 4096 },
      { kind: 'write', id: 4, target: 'ig2', offset: 0, length: 4096 },
    ],
  ),
  snapshots: mk(
    'snapshots',
    [
      { id: 'base', kind: 'disk', size: 8 * MiB },
      { id: 'cow1', kind: 'disk', size: 16 * MiB },
      { id: 'cow2', kind: 'disk', size: 16 * MiB },
      { id: 'org', kind: 'dm-snapshot-origin', on: 'base' },
      { id: 'snap', kind: 'dm-snapshot', origin: 'org', cow: 'cow1', createdAt: 'op' },
      { id: 'old', kind: 'dm-snapshot', origin: 'org', cow: 'cow2', chunk: 8192, persistent: false },
    ],
    [
      { kind: 'write', id: 1, target: 'org', offset: 0, length: 8192 },
      { kind: 'snapshot-create', id: 2, target: 'snap' },
      { kind: 'write', id: 3, target: 'org', offset: 0, length: 4096 },
      { kind: 'read', id: 4, target: 'snap', offset: 0, length: 8192 },
      { kind: 'snapshot-remove', id: 5, target: 'snap' },
      { kind: 'snapshot-merge', id: 6, target: 'old' },
    ],
  ),
  'scsi-debug-pi': mk(
    'scsi-debug-pi',
    [
      { id: 'sd', kind: 'scsi-debug', size: 64 * MiB, logicalBlockSize: 512, dif: 1, dix: true, guard: 'ip' },
      { id: 'lin', kind: 'dm-linear', on: 'sd' },
      { id: 'cr', kind: 'dm-crypt', on: 'lin', wipe: true, sectorSize: 4096 },
    ],
    [
      { kind: 'write', id: 1, target: 'cr', offset: 0, length: 65536, direct: true },
      { kind: 'read', id: 2, target: 'cr', offset: 0, length: 65536, direct: true },
    ],
  ),
  'threads-btrfs-gfs2': mk(
    'threads-btrfs-gfs2',
    [
      { id: 'd', kind: 'disk', size: 256 * MiB },
      { id: 'fs', kind: 'fs', on: 'd', type: 'btrfs', mkfsOptions: ['-m', 'single'] },
      { id: 'f', kind: 'file', on: 'fs', name: 'f' },
      { id: 'd2', kind: 'disk', size: 128 * MiB },
      { id: 'gfs', kind: 'fs', on: 'd2', type: 'gfs2', mkfsOptions: ['-p', 'lock_nolock'] },
      { id: 'h', kind: 'file', on: 'gfs', name: 'h', size: 8192 },
    ],
    [
      { kind: 'write', id: 1, target: 'f', offset: 0, length: 4096 },
      { kind: 'barrier', id: 2, name: 'b1' },
      { kind: 'fallocate', id: 3, target: 'f', mode: 'keep-size', offset: 0, length: 65536 },
      { kind: 'write', id: 4, target: 'h', offset: 0, length: 8192, dsync: true },
    ],
    [
      { kind: 'mmap-write', id: 11, target: 'f', offset: 0, length: 4096 },
      { kind: 'barrier', id: 12, name: 'b1' },
      { kind: 'read', id: 13, target: 'f', offset: 0, length: 4096 },
    ],
  ),
};
