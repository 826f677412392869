/**
 * The oracle must be shown to catch wrong kernels. Take what a correct kernel
 * reports for varied cases (the model's own prediction), mutate it the way
 * real kernel bugs would (test/helpers/mutate.ts), and require that every
 * mutant is judged a divergence of the right class, naming the op, the
 * expected set, the observed value, the first bad offset and the writers.
 *
 * The fixtures say, from the program and documented Linux behaviour alone,
 * where a mutant is illegal (exact reads, ops that cannot fail, ops that must
 * fail); nothing is filtered by what the model answers. A deliberately
 * permissive judge run through the same suite scores 0, so the assertions,
 * not the fixtures, are what catch a model that allows everything.
 */
import { describe, expect, it } from 'vitest';
import {
  type Case,
  type CaseInput,
  type Observation,
  type OracleAnswer,
  type StackInfo,
  judgeObservation,
  predictObservation,
  validateCase,
} from '../../model/index.ts';
import { type Fixture, type Outcome, OPERATORS, formatScore, mutants, score, verdictFor } from '../helpers/mutate.ts';

const MiB = 1024 * 1024;

type Layers = CaseInput['stack']['layers'];
type Ops = CaseInput['program']['threads'][number]['ops'];

function caseOf(name: string, layers: Layers, ...threads: Ops[]): CaseInput {
  return { format: 'blockfarm-case/1', name, seed: Number(process.env.MUTATION_SEED ?? 0xb10c) /* other seeds: MUTATION_SEED=n */, stack: { layers }, program: { threads: threads.map((ops) => ({ ops })) } };
}

const EINVAL_DISCARD = 'BLKDISCARD takes 512-byte aligned ranges (blk_ioctl_discard returns EINVAL)';

const FIXTURES: Fixture[] = [
  {
    name: 'raw disk: overwrite, O_DIRECT io_uring, end of device',
    input: caseOf(
      'raw-disk',
      [{ id: 'd', kind: 'disk', size: 4 * MiB }],
      [
        { kind: 'write', id: 1, target: 'd', offset: 0, length: 16384 },
        { kind: 'write', id: 2, target: 'd', offset: 4096, length: 4096 },
        { kind: 'read', id: 3, target: 'd', offset: 0, length: 16384 },
        { kind: 'write', id: 4, target: 'd', offset: 1 * MiB, length: 4096, via: 'io_uring', direct: true },
        { kind: 'read', id: 5, target: 'd', offset: 1 * MiB - 4096, length: 8192, direct: true },
        { kind: 'discard', id: 6, target: 'd', offset: 100, length: 512 },
        { kind: 'fsync', id: 7, target: 'd' },
        { kind: 'read', id: 8, target: 'd', offset: 4 * MiB - 4096, length: 8192 },
        { kind: 'fallocate', id: 9, target: 'd', mode: 'allocate', offset: 0, length: 4096 },
      ],
    ),
    exactReads: [3, 5, 8],
    exactFinal: ['d'],
    mustSucceed: [1, 2, 3, 4, 5, 7, 8],
    mustFail: [
      { op: 6, why: EINVAL_DISCARD, expect: { class: 'missing-error' } },
      { op: 9, why: 'blkdev_fallocate supports only the zeroing modes (EOPNOTSUPP otherwise)', expect: { class: 'missing-error' } },
    ],
  },
  {
    name: 'ext4 file: overwrite, truncate, punch, EOF',
    input: caseOf(
      'ext4-file',
      [
        { id: 'd', kind: 'disk', size: 64 * MiB },
        { id: 'fs', kind: 'fs', on: 'd', type: 'ext4' },
        { id: 'f', kind: 'file', on: 'fs', name: 'f' },
      ],
      [
        { kind: 'write', id: 1, target: 'f', offset: 0, length: 12288 },
        { kind: 'write', id: 2, target: 'f', offset: 4096, length: 4096, dsync: true },
        { kind: 'truncate', id: 3, target: 'f', size: 10000 },
        { kind: 'read', id: 4, target: 'f', offset: 0, length: 16384 },
        { kind: 'fallocate', id: 5, target: 'f', mode: 'punch-hole', offset: 0, length: 4096 },
        { kind: 'read', id: 6, target: 'f', offset: 0, length: 8192 },
        { kind: 'fallocate', id: 7, target: 'f', mode: 'collapse-range', offset: 100, length: 4096 },
        { kind: 'mmap-read', id: 8, target: 'f', offset: 12288, length: 4096 },
        { kind: 'fsync', id: 9, target: 'f' },
      ],
    ),
    exactReads: [4, 6],
    exactFinal: ['f'],
    mustSucceed: [1, 2, 3, 4, 5, 6, 9],
    mustFail: [
      { op: 7, why: 'ext4 collapses whole blocks only (ext4_collapse_range returns EINVAL)', expect: { class: 'missing-error' } },
      { op: 8, why: 'a mapping access past the page holding EOF raises SIGBUS (mmap(2))', expect: { class: 'missing-signal' } },
    ],
  },
  {
    name: 'ext4 file: collapse and insert range move content (runs with a delta)',
    input: caseOf(
      'ext4-shift',
      [
        { id: 'd', kind: 'disk', size: 64 * MiB },
        { id: 'fs', kind: 'fs', on: 'd', type: 'ext4' },
        { id: 'f', kind: 'file', on: 'fs', name: 'f' },
      ],
      [
        { kind: 'write', id: 1, target: 'f', offset: 0, length: 16384 },
        { kind: 'fallocate', id: 2, target: 'f', mode: 'collapse-range', offset: 4096, length: 4096 },
        { kind: 'read', id: 3, target: 'f', offset: 0, length: 12288 },
        { kind: 'fallocate', id: 4, target: 'f', mode: 'insert-range', offset: 4096, length: 8192 },
        { kind: 'write', id: 5, target: 'f', offset: 8192, length: 2048 },
        { kind: 'read', id: 6, target: 'f', offset: 0, length: 20480 },
      ],
    ),
    exactReads: [3, 6],
    exactFinal: ['f'],
    mustSucceed: [1, 2, 3, 4, 5, 6],
  },
  {
    name: 'dm-stripe over two disks, and scsi_debug with DIF under dm-linear',
    input: caseOf(
      'stripe-dif',
      [
        { id: 'a', kind: 'disk', size: 16 * MiB },
        { id: 'b', kind: 'disk', size: 16 * MiB },
        { id: 'st', kind: 'dm-stripe', members: ['a', 'b'], chunk: 4096 },
        { id: 'sd', kind: 'scsi-debug', size: 64 * MiB, dif: 1, dix: true },
        { id: 'lin', kind: 'dm-linear', on: 'sd' },
      ],
      [
        { kind: 'write', id: 1, target: 'st', offset: 2048, length: 8192, direct: true },
        { kind: 'read', id: 2, target: 'st', offset: 0, length: 12288, direct: true },
        { kind: 'write', id: 3, target: 'lin', offset: 0, length: 65536, direct: true },
        { kind: 'write', id: 4, target: 'lin', offset: 4096, length: 512, direct: true },
        { kind: 'read', id: 5, target: 'lin', offset: 0, length: 65536, direct: true },
      ],
    ),
    exactReads: [2, 5],
    exactFinal: ['st', 'lin'],
    // SCENARIOS S3: with T10 PI under dm-linear, write-then-read round-trips without error.
    mustSucceed: [1, 2, 3, 4, 5],
  },
  {
    name: 'xfs file: O_DIRECT write, buffered overwrite, O_DIRECT read on a 4K-sector disk',
    input: caseOf(
      'xfs-dio',
      [
        { id: 'd', kind: 'disk', size: 512 * MiB, logicalBlockSize: 4096 },
        { id: 'fs', kind: 'fs', on: 'd', type: 'xfs' },
        { id: 'f', kind: 'file', on: 'fs', name: 'f' },
      ],
      [
        { kind: 'write', id: 1, target: 'f', offset: 0, length: 65536, direct: true, mustSucceed: true },
        { kind: 'write', id: 2, target: 'f', offset: 8192, length: 4096 },
        { kind: 'read', id: 3, target: 'f', offset: 0, length: 65536, direct: true },
        { kind: 'fsync', id: 4, target: 'f' },
      ],
    ),
    exactReads: [3],
    exactFinal: ['f'],
    mustSucceed: [1, 2, 3, 4],
  },
  {
    name: 'btrfs (S2): page-sized extents, O_DIRECT io_uring read into a partly faulted buffer',
    input: caseOf(
      's2-btrfs',
      [
        { id: 'd', kind: 'disk', size: 256 * MiB },
        { id: 'fs', kind: 'fs', on: 'd', type: 'btrfs' },
        { id: 'f', kind: 'file', on: 'fs', name: 'f' },
      ],
      [
        { kind: 'write', id: 1, target: 'f', offset: 0, length: 4096 },
        { kind: 'fsync', id: 2, target: 'f' },
        { kind: 'write', id: 3, target: 'f', offset: 4096, length: 4096 },
        { kind: 'fsync', id: 4, target: 'f' },
        { kind: 'write', id: 5, target: 'f', offset: 8192, length: 4096 },
        { kind: 'fsync', id: 6, target: 'f' },
        { kind: 'read', id: 7, target: 'f', offset: 0, length: 12288, direct: true, via: 'io_uring', buffer: { placement: 'anon', touchedPages: 1 } },
        { kind: 'fallocate', id: 8, target: 'f', mode: 'collapse-range', offset: 0, length: 4096 },
      ],
    ),
    exactReads: [7],
    exactFinal: ['f'],
    // SCENARIOS S2: a read wholly below EOF returns all its bytes (no RWF_NOWAIT here).
    mustSucceed: [1, 2, 3, 4, 5, 6, 7],
    mustFail: [{ op: 8, why: 'btrfs_fallocate has no collapse range (EOPNOTSUPP)', expect: { class: 'missing-error' } }],
  },
  {
    name: 'loop (S1): direct IO, 512-byte blocks over a file on ext4 on a 4K-sector disk',
    input: caseOf(
      's1-loop',
      [
        { id: 'd', kind: 'disk', size: 64 * MiB, logicalBlockSize: 4096 },
        { id: 'fs', kind: 'fs', on: 'd', type: 'ext4' },
        { id: 'f', kind: 'file', on: 'fs', name: 'backing', size: 4 * MiB },
        { id: 'lo', kind: 'loop', on: 'f', directIo: true, logicalBlockSize: 512 },
      ],
      [
        { kind: 'write', id: 1, target: 'lo', offset: 0, length: 8192, direct: true },
        { kind: 'write', id: 2, target: 'lo', offset: 512, length: 1024, direct: true },
        { kind: 'read', id: 3, target: 'lo', offset: 0, length: 8192, direct: true },
        { kind: 'read', id: 4, target: 'lo', offset: 1536, length: 512, direct: true },
      ],
    ),
    exactReads: [3, 4],
    exactFinal: ['lo'],
    // SCENARIOS S1: IO legal for the loop device's advertised 512-byte blocks must succeed.
    mustSucceed: [1, 2, 3, 4],
  },
  {
    name: 'dm-linear window: reads across its end',
    input: caseOf(
      'dm-linear',
      [
        { id: 'd', kind: 'disk', size: 16 * MiB },
        { id: 'lin', kind: 'dm-linear', on: 'd', offset: 1 * MiB, length: 8 * MiB },
      ],
      [
        { kind: 'write', id: 1, target: 'lin', offset: 0, length: 65536 },
        { kind: 'write', id: 2, target: 'lin', offset: 8 * MiB - 4096, length: 4096 },
        { kind: 'read', id: 3, target: 'lin', offset: 8 * MiB - 8192, length: 16384 },
        { kind: 'read', id: 4, target: 'lin', offset: 0, length: 4096 },
        { kind: 'flush', id: 5, target: 'lin' },
      ],
    ),
    exactReads: [3, 4],
    exactFinal: ['lin'],
    mustSucceed: [1, 2, 3, 4, 5],
  },
  {
    name: 'dm-snapshot (S4): the snapshot keeps what the origin held at creation',
    input: caseOf(
      's4-snapshot',
      [
        { id: 'base', kind: 'disk', size: 8 * MiB },
        { id: 'cowd', kind: 'disk', size: 16 * MiB },
        { id: 'org', kind: 'dm-snapshot-origin', on: 'base' },
        { id: 'snap', kind: 'dm-snapshot', origin: 'org', cow: 'cowd', createdAt: 'op' },
      ],
      [
        { kind: 'write', id: 1, target: 'org', offset: 0, length: 8192 },
        { kind: 'snapshot-create', id: 2, target: 'snap' },
        { kind: 'write', id: 3, target: 'org', offset: 0, length: 4096 },
        { kind: 'read', id: 4, target: 'org', offset: 0, length: 8192 },
        { kind: 'read', id: 5, target: 'snap', offset: 0, length: 8192 },
        { kind: 'write', id: 6, target: 'snap', offset: 4096, length: 4096 },
        { kind: 'read', id: 7, target: 'snap', offset: 0, length: 8192 },
      ],
    ),
    exactReads: [4, 5, 7],
    exactFinal: ['org', 'snap'],
    mustSucceed: [1, 2, 3, 4, 5, 6, 7],
  },
  {
    name: 'AEAD dm-crypt over dm-integrity (S3): round trip, never-written sectors fail',
    input: caseOf(
      's3-aead',
      [
        { id: 'd', kind: 'disk', size: 32 * MiB },
        { id: 'ig', kind: 'dm-integrity', on: 'd', internalHash: 'none', tagSize: 28 },
        { id: 'cr', kind: 'dm-crypt', on: 'ig', integrity: 'gcm' },
      ],
      [
        { kind: 'write', id: 1, target: 'cr', offset: 0, length: 8192 },
        { kind: 'read', id: 2, target: 'cr', offset: 0, length: 8192 },
        { kind: 'read', id: 3, target: 'cr', offset: 65536, length: 4096 },
        { kind: 'write', id: 4, target: 'cr', offset: 1 * MiB, length: 4096, direct: true },
        { kind: 'read', id: 5, target: 'cr', offset: 1 * MiB, length: 4096, direct: true },
      ],
    ),
    exactReads: [2, 5],
    exactFinal: ['cr'],
    // SCENARIOS S3: write-then-read round-trips without error at every stack depth.
    mustSucceed: [1, 2, 4, 5],
    mustFail: [
      {
        op: 3,
        why: 'a never-written sector of an unwiped AEAD dm-crypt has no valid tag (its reads fail integrity checks)',
        expect: { class: 'wrong-data', dataClass: 'data-instead-of-error' },
      },
    ],
    unreadable: [{ obj: 'cr', start: 65536, end: 69632, why: 'it was never written, so it has no valid tag' }],
  },
  {
    name: 'dm-dust: bad blocks fail reads until written',
    input: caseOf(
      'dm-dust',
      [
        { id: 'd', kind: 'disk', size: 4 * MiB },
        { id: 'du', kind: 'dm-dust', on: 'd', blockSize: 4096, badBlocks: [4, 5] },
      ],
      [
        { kind: 'write', id: 1, target: 'du', offset: 0, length: 8192 },
        { kind: 'read', id: 2, target: 'du', offset: 0, length: 8192 },
        { kind: 'read', id: 3, target: 'du', offset: 16384, length: 4096 },
        { kind: 'write', id: 4, target: 'du', offset: 20480, length: 4096 },
        { kind: 'read', id: 5, target: 'du', offset: 20480, length: 4096 },
      ],
    ),
    exactReads: [2, 5],
    exactFinal: ['du'],
    // dm-dust.rst: a write to a bad block succeeds and removes it from the list.
    mustSucceed: [1, 2, 4, 5],
    mustFail: [{ op: 3, why: 'dm-dust fails reads of a listed bad block with EIO', expect: { class: 'wrong-data', dataClass: 'data-instead-of-error' } }],
    unreadable: [{ obj: 'du', start: 16384, end: 20480, why: 'bad block 4 was never written' }],
  },
  {
    name: 'racing threads: disjoint writes, a racy read, reads after the barrier',
    input: caseOf(
      'race-disjoint',
      [{ id: 'd', kind: 'disk', size: 1 * MiB }],
      [
        { kind: 'write', id: 1, target: 'd', offset: 0, length: 8192 },
        { kind: 'read', id: 2, target: 'd', offset: 8192, length: 8192 },
        { kind: 'barrier', id: 3, name: 'b' },
        { kind: 'read', id: 4, target: 'd', offset: 0, length: 16384 },
      ],
      [
        { kind: 'write', id: 11, target: 'd', offset: 8192, length: 8192 },
        { kind: 'barrier', id: 12, name: 'b' },
        { kind: 'read', id: 13, target: 'd', offset: 0, length: 4096 },
      ],
    ),
    exactReads: [4, 13],
    // Read 2 races write 11: zeroes or op 11 per byte, never anything else.
    settledReads: [2],
    exactFinal: ['d'],
    mustSucceed: [1, 2, 4, 11, 13],
  },
  {
    name: 'md raid0 (S1 variant): sub-page direct IO split across 4K chunks',
    input: caseOf(
      'md-raid0',
      [
        { id: 'c', kind: 'disk', size: 32 * MiB },
        { id: 'e', kind: 'disk', size: 32 * MiB },
        { id: 'r0', kind: 'md', level: 0, members: ['c', 'e'], chunk: 4096 },
      ],
      [
        { kind: 'write', id: 1, target: 'r0', offset: 0, length: 65536, direct: true },
        { kind: 'write', id: 2, target: 'r0', offset: 1536, length: 10240, direct: true },
        { kind: 'read', id: 3, target: 'r0', offset: 0, length: 65536, direct: true },
      ],
    ),
    exactReads: [3],
    exactFinal: ['r0'],
    mustSucceed: [1, 2, 3],
  },
  {
    name: 'xfs (S5): mmap stores into a hole racing fallocate and buffered writes',
    input: caseOf(
      's5-xfs',
      [
        { id: 'd', kind: 'disk', size: 512 * MiB },
        { id: 'fs', kind: 'fs', on: 'd', type: 'xfs' },
        { id: 'f', kind: 'file', on: 'fs', name: 'f', size: 65536 },
      ],
      [
        { kind: 'mmap-write', id: 1, target: 'f', offset: 0, length: 8192 },
        { kind: 'barrier', id: 2, name: 'b' },
        { kind: 'fsync', id: 3, target: 'f' },
        { kind: 'drop-caches', id: 4 },
        { kind: 'read', id: 5, target: 'f', offset: 0, length: 65536 },
      ],
      [
        { kind: 'fallocate', id: 11, target: 'f', mode: 'keep-size', offset: 0, length: 65536 },
        { kind: 'write', id: 12, target: 'f', offset: 4096, length: 8192 },
        { kind: 'barrier', id: 13, name: 'b' },
      ],
    ),
    exactReads: [],
    // [4096, 8192) is op 1 or op 12, per byte: settled, not exact.
    settledReads: [5],
    exactFinal: [],
    settledFinal: ['f'],
    mustSucceed: [1, 3, 4, 5, 11, 12],
  },
  {
    name: 'ext4: punch-hole racing a write that extends the file',
    input: caseOf(
      'race-punch',
      [
        { id: 'd', kind: 'disk', size: 64 * MiB },
        { id: 'fs', kind: 'fs', on: 'd', type: 'ext4' },
        { id: 'f', kind: 'file', on: 'fs', name: 'f' },
      ],
      [
        { kind: 'write', id: 1, target: 'f', offset: 0, length: 8192 },
        { kind: 'barrier', id: 2, name: 'b' },
        { kind: 'read', id: 3, target: 'f', offset: 0, length: 8192 },
      ],
      [
        { kind: 'fallocate', id: 11, target: 'f', mode: 'punch-hole', offset: 0, length: 8192 },
        { kind: 'barrier', id: 12, name: 'b' },
      ],
    ),
    exactReads: [],
    settledReads: [3],
    exactFinal: [],
    settledFinal: ['f'],
    mustSucceed: [1, 3, 11],
  },
  {
    name: 'ext4: a store through a mapping racing a write that extends the file',
    input: caseOf(
      'race-mmap',
      [
        { id: 'd', kind: 'disk', size: 64 * MiB },
        { id: 'fs', kind: 'fs', on: 'd', type: 'ext4' },
        { id: 'f', kind: 'file', on: 'fs', name: 'f' },
      ],
      [
        { kind: 'write', id: 1, target: 'f', offset: 0, length: 8192 },
        { kind: 'barrier', id: 2, name: 'b' },
        { kind: 'read', id: 3, target: 'f', offset: 0, length: 8192 },
      ],
      [
        { kind: 'mmap-write', id: 11, target: 'f', offset: 0, length: 4096 },
        { kind: 'barrier', id: 12, name: 'b' },
      ],
    ),
    exactReads: [],
    settledReads: [3],
    exactFinal: [],
    settledFinal: ['f'],
    // The store may SIGBUS if it ran before the write extended the file.
    mustSucceed: [1, 3],
  },
];

type Judge = (c: Case, info: StackInfo, obs: Observation) => OracleAnswer;

/** TEST ONLY: a deliberately permissive judge that accepts every observation. Never use it for anything else. */
const permissiveJudge: Judge = () => ({ verdict: 'pass', notes: [] });

interface Built {
  fx: Fixture;
  c: Case;
  info: StackInfo;
  predicted: Observation;
}

function buildAll(): Built[] {
  return FIXTURES.map((fx) => {
    const v = validateCase(fx.input);
    if (!v.ok) throw new Error(`fixture '${fx.name}' is invalid: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    return { fx, c: v.value, info: v.info, predicted: predictObservation(v.value, v.info) };
  });
}

function runSuite(judge: Judge, built: Built[]): Array<Outcome & { divergences: ReturnType<typeof divergencesOf> }> {
  const out: Array<Outcome & { divergences: ReturnType<typeof divergencesOf> }> = [];
  for (const b of built)
    for (const m of mutants(b.fx, b.predicted)) {
      const ds = divergencesOf(judge(b.c, b.info, m.observation));
      out.push({ ...verdictFor(m, ds), divergences: ds });
    }
  return out;
}

function divergencesOf(a: OracleAnswer) {
  if (a.incomplete !== undefined) throw new Error(`incomplete observation: ${a.incomplete}`);
  return a.verdict === 'divergence' ? a.divergences : [];
}

/** The suite's verdict on a judge: every mutant killed, and enough of each operator to mean something. */
function assertAllKilled(outcomes: readonly Outcome[]): void {
  const s = score(outcomes);
  const survivors = outcomes.filter((o) => !o.killed).map((o) => `[${o.mutant.operator}] ${o.mutant.fixture}: ${o.mutant.description} -> ${o.why}`);
  expect(survivors, `surviving mutants:\n${survivors.join('\n')}`).toEqual([]);
  for (const op of OPERATORS) expect(s.byOperator[op].total, `mutants of operator ${op}`).toBeGreaterThanOrEqual(3);
}

describe('oracle mutation testing', () => {
  const built = buildAll();

  it('every fixture is valid and the unmutated prediction passes its own judge', () => {
    for (const b of built) {
      const a = judgeObservation(b.c, b.info, b.predicted);
      expect(a, b.fx.name).toEqual({ verdict: 'pass', notes: expect.any(Array) });
    }
  });

  it('kills every mutant with a divergence of the right class (mutation score 100%)', () => {
    const outcomes = runSuite(judgeObservation, built);
    console.log(formatScore('mutation score, model oracle', score(outcomes)));
    assertAllKilled(outcomes);
  });

  it('names the op, the expected set, the observed value, the first bad offset and the writers', () => {
    const outcomes = runSuite(judgeObservation, built);
    const problems: string[] = [];
    for (const o of outcomes) {
      const d = o.divergences[0];
      const e = o.mutant.expect;
      const tag = `[${o.mutant.operator}] ${o.mutant.fixture}: ${o.mutant.description}`;
      if (!d) {
        problems.push(`${tag}: no divergence`);
        continue;
      }
      if (!d.expected || !d.observed || !d.message || d.message.includes('\n')) problems.push(`${tag}: expected/observed/message missing or not one line`);
      if (e.op !== undefined && (d.op !== e.op || !d.opKind)) problems.push(`${tag}: names op ${d.op} (${d.opKind}), not ${e.op}`);
      if (e.offset !== undefined && d.offset !== e.offset) problems.push(`${tag}: first bad offset ${d.offset}, not ${e.offset}`);
      if (e.expectedWriters !== undefined) {
        const got = d.expectedWriters ?? [];
        if (e.expectedWriters.some((w) => !got.includes(w)) || (e.expectedWriters.length === 0 && got.length !== 0))
          problems.push(`${tag}: expected writers [${got}], not [${e.expectedWriters}]`);
        // The expected set in words names the same writers.
        for (const w of e.expectedWriters) if (!new RegExp(`\\bop ${w}\\b`).test(d.expected)) problems.push(`${tag}: expected '${d.expected}' does not name op ${w}`);
      }
      if (e.observedWriter !== undefined && d.observedWriter !== e.observedWriter) problems.push(`${tag}: observed writer ${d.observedWriter}, not ${e.observedWriter}`);
      if (e.observed !== undefined && !d.observed.includes(e.observed)) problems.push(`${tag}: observed '${d.observed}' lacks '${e.observed}'`);
    }
    expect(problems).toEqual([]);
  });

  it('a model that allows everything fails the suite: the permissive judge scores 0', () => {
    const outcomes = runSuite(permissiveJudge, built);
    const s = score(outcomes);
    console.log(formatScore('mutation score, permissive judge (test only)', s));
    expect(s.total).toBe(runSuite(judgeObservation, built).length);
    expect(s.killed).toBe(0);
    expect(() => assertAllKilled(outcomes)).toThrow();
  });

});
