/**
 * fast-check arbitraries of small valid cases for model properties: one
 * stack (a disk, or a file on ext4), one or two threads cut into phases by
 * barriers, random data ops (every submission path, O_DIRECT aligned or not,
 * RWF_NOWAIT, vectors, heap and anonymous buffers), mmap ops, fallocate,
 * truncate, discard and writeback. Every case passes validateCase.
 */
import fc from 'fast-check';
import { type Built, type LayerInput, type OpInput, build, caseInput, fileLayers } from './cases.ts';

export interface ArbOptions {
  maxThreads?: number;
  maxPhases?: number;
  maxOpsPerPhase?: number;
}

type OpMaker = (id: number) => OpInput;

const DISK_SIZE = 256 * 1024;
const FILE_SPAN = 64 * 1024;

function dataOp(kind: 'write' | 'read', target: string, span: number, lbs: number): fc.Arbitrary<OpMaker> {
  return fc
    .record({
      place: fc.constantFrom('aligned', 'sector', 'byte'),
      unit: fc.nat(Math.floor(span / 512)),
      byte: fc.nat(span),
      blocks: fc.integer({ min: 1, max: 8 }),
      bytes: fc.integer({ min: 1, max: 12000 }),
      via: fc.constantFrom('psync', 'pvec', 'io_uring'),
      direct: fc.boolean(),
      nowait: fc.boolean(),
      vectors: fc.integer({ min: 1, max: 4 }),
      buffer: fc.oneof(
        fc.constant({ placement: 'heap', align: 0 }),
        fc.constant({ placement: 'heap', align: 512 }),
        fc.record({ placement: fc.constant('anon'), touchedPages: fc.nat(3), align: fc.constant(0) }),
      ),
    })
    .map((r) => (id: number): OpInput => {
      let offset: number;
      let length: number;
      if (r.place === 'aligned') {
        offset = Math.floor((r.unit * 512) / lbs) * lbs;
        length = r.blocks * lbs;
      } else if (r.place === 'sector') {
        offset = r.unit * 512;
        length = r.blocks * 512;
      } else {
        offset = r.byte;
        length = r.bytes;
      }
      const vec = r.via !== 'psync';
      const pages = Math.ceil((length + r.buffer.align) / 4096);
      const buffer = r.buffer.placement === 'anon' ? { ...r.buffer, touchedPages: Math.min(r.buffer.touchedPages, pages) } : r.buffer;
      return {
        kind,
        id,
        target,
        offset,
        length,
        via: r.via,
        direct: r.direct,
        nowait: vec && r.nowait,
        vectors: vec ? Math.min(r.vectors, length) : 1,
        buffer,
      } as OpInput;
    });
}

function diskOps(lbs: number, target = 'd', size = DISK_SIZE): fc.Arbitrary<OpMaker> {
  const range = fc.record({ sector: fc.nat(size / 512 + 8), sectors: fc.integer({ min: 1, max: 32 }) });
  return fc.oneof(
    { weight: 4, arbitrary: dataOp('write', target, size + 4096, lbs) },
    { weight: 4, arbitrary: dataOp('read', target, size + 4096, lbs) },
    { weight: 1, arbitrary: fc.constant((id: number): OpInput => ({ kind: 'fsync', id, target })) },
    { weight: 1, arbitrary: fc.constant((id: number): OpInput => ({ kind: 'flush', id, target })) },
    { weight: 1, arbitrary: fc.constant((id: number): OpInput => ({ kind: 'drop-caches', id })) },
    {
      weight: 1,
      arbitrary: fc
        .record({ r: range, mode: fc.constantFrom('discard', 'zeroout', 'secure') })
        .map(({ r, mode }) => (id: number): OpInput => ({ kind: 'discard', id, target, offset: r.sector * 512, length: r.sectors * 512, mode }) as OpInput),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({ r: range, mode: fc.constantFrom('zero-range', 'zero-range-keep-size', 'punch-hole', 'allocate') })
        .map(({ r, mode }) => (id: number): OpInput => ({ kind: 'fallocate', id, target, offset: r.sector * 512, length: r.sectors * 512, mode }) as OpInput),
    },
  );
}

function fileOps(): fc.Arbitrary<OpMaker> {
  const blockRange = fc.record({ block: fc.nat(16), blocks: fc.integer({ min: 1, max: 4 }), misalign: fc.constantFrom(0, 0, 0, 512) });
  return fc.oneof(
    { weight: 4, arbitrary: dataOp('write', 'f', FILE_SPAN, 4096) },
    { weight: 4, arbitrary: dataOp('read', 'f', FILE_SPAN, 4096) },
    { weight: 1, arbitrary: fc.nat(FILE_SPAN).map((size) => (id: number): OpInput => ({ kind: 'truncate', id, target: 'f', size })) },
    {
      weight: 2,
      arbitrary: fc
        .record({
          r: blockRange,
          mode: fc.constantFrom('allocate', 'keep-size', 'punch-hole', 'zero-range', 'zero-range-keep-size', 'collapse-range', 'insert-range', 'unshare-range'),
        })
        .map(({ r, mode }) => (id: number): OpInput => ({ kind: 'fallocate', id, target: 'f', offset: r.block * 4096 + r.misalign, length: r.blocks * 4096, mode }) as OpInput),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({ kind: fc.constantFrom('mmap-write', 'mmap-read'), offset: fc.nat(FILE_SPAN), length: fc.integer({ min: 1, max: 9000 }) })
        .map((r) => (id: number): OpInput => ({ kind: r.kind, id, target: 'f', offset: r.offset, length: r.length }) as OpInput),
    },
    { weight: 1, arbitrary: fc.constantFrom('sync', 'async', 'invalidate').map((mode) => (id: number): OpInput => ({ kind: 'msync', id, target: 'f', mode }) as OpInput) },
    { weight: 1, arbitrary: fc.boolean().map((dataOnly) => (id: number): OpInput => ({ kind: 'fsync', id, target: 'f', dataOnly })) },
    {
      weight: 1,
      arbitrary: fc
        .record({ offset: fc.nat(FILE_SPAN), length: fc.nat(FILE_SPAN), flags: fc.constantFrom('write', 'wait-write') })
        .map((r) => (id: number): OpInput => ({ kind: 'sync-file-range', id, target: 'f', ...r }) as OpInput),
    },
    { weight: 1, arbitrary: fc.constant((id: number): OpInput => ({ kind: 'drop-caches', id })) },
  );
}

/** Threads cut into phases: program[t] is the ops of thread t, with barriers p1, p2, ... between phases. */
function program(ops: fc.Arbitrary<OpMaker>, o: Required<ArbOptions>): fc.Arbitrary<OpInput[][]> {
  return fc
    .record({
      threads: fc.integer({ min: 1, max: o.maxThreads }),
      phases: fc.integer({ min: 1, max: o.maxPhases }),
    })
    .chain(({ threads, phases }) =>
      fc.array(fc.array(fc.array(ops, { minLength: 0, maxLength: o.maxOpsPerPhase }), { minLength: phases, maxLength: phases }), { minLength: threads, maxLength: threads }),
    )
    .map((byThread) => {
      let id = 0;
      return byThread.map((phases) =>
        phases.flatMap((makers, p) => {
          const out = makers.map((m) => m(++id));
          if (p < phases.length - 1) out.push({ kind: 'barrier', id: ++id, name: `p${p + 1}` });
          return out;
        }),
      );
    })
    .filter((threads) => threads.some((t) => t.some((x) => x.kind !== 'barrier')));
}

/** A small valid case on a disk or on a file of an ext4 filesystem. */
export function smallCase(opts: ArbOptions = {}): fc.Arbitrary<Built> {
  const o: Required<ArbOptions> = { maxThreads: 2, maxPhases: 3, maxOpsPerPhase: 4, ...opts };
  const disk = fc
    .record({ lbs: fc.constantFrom(512, 4096) as fc.Arbitrary<512 | 4096>, seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }) })
    .chain(({ lbs, seed }) =>
      program(diskOps(lbs), o).map((threads) => {
        const layers: LayerInput[] = [{ id: 'd', kind: 'disk', size: DISK_SIZE, logicalBlockSize: lbs }];
        return caseInput(layers, threads, { seed, name: 'arb-disk' });
      }),
    );
  const file = fc
    .record({ seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }), fileSize: fc.constantFrom(0, 0, 10000, 4096 * 3) })
    .chain(({ seed, fileSize }) => program(fileOps(), o).map((threads) => caseInput(fileLayers('ext4', { fileSize }), threads, { seed, name: 'arb-file' })));
  return fc.oneof(disk, file).map((input) => build(input));
}

const MiB = 1024 * 1024;

/** Block stacks with a top device 'top' of known size, over every layer kind the model knows. */
const STACKS: Array<{ name: string; lbs: number; size: number; layers: LayerInput[] }> = [
  { name: 'loop-dio-over-ext4-file', lbs: 512, size: 4 * MiB, layers: [...fileLayers('ext4', { fileSize: 4 * MiB }), { id: 'top', kind: 'loop', on: 'f', directIo: true, logicalBlockSize: 512 }] },
  { name: 'loop-over-xfs-file-4k', lbs: 4096, size: 4 * MiB, layers: [...fileLayers('xfs', { fileSize: 4 * MiB }), { id: 'top', kind: 'loop', on: 'f', directIo: true, logicalBlockSize: 4096 }] },
  { name: 'dm-linear', lbs: 512, size: 2 * MiB, layers: [{ id: 'd', kind: 'disk', size: 8 * MiB }, { id: 'top', kind: 'dm-linear', on: 'd', offset: MiB, length: 2 * MiB }] },
  { name: 'dm-stripe', lbs: 512, size: 8 * MiB, layers: [{ id: 'a', kind: 'disk', size: 4 * MiB }, { id: 'b', kind: 'disk', size: 4 * MiB }, { id: 'top', kind: 'dm-stripe', members: ['a', 'b'], chunk: 4096 }] },
  { name: 'dm-crypt-plain', lbs: 512, size: 4 * MiB, layers: [{ id: 'd', kind: 'disk', size: 4 * MiB }, { id: 'top', kind: 'dm-crypt', on: 'd' }] },
  { name: 'dm-crypt-4k-wiped', lbs: 4096, size: 4 * MiB, layers: [{ id: 'd', kind: 'disk', size: 4 * MiB }, { id: 'top', kind: 'dm-crypt', on: 'd', sectorSize: 4096, wipe: true }] },
  {
    name: 'aead-over-integrity', lbs: 512, size: 4 * MiB,
    layers: [{ id: 'd', kind: 'disk', size: 8 * MiB }, { id: 'i', kind: 'dm-integrity', on: 'd', internalHash: 'none', tagSize: 28 }, { id: 'top', kind: 'dm-crypt', on: 'i', integrity: 'gcm' }],
  },
  { name: 'dm-integrity', lbs: 512, size: 4 * MiB, layers: [{ id: 'd', kind: 'disk', size: 8 * MiB }, { id: 'top', kind: 'dm-integrity', on: 'd' }] },
  { name: 'dm-dust', lbs: 512, size: 4 * MiB, layers: [{ id: 'd', kind: 'disk', size: 4 * MiB }, { id: 'top', kind: 'dm-dust', on: 'd', blockSize: 4096, badBlocks: [1, 3, 7] }] },
  { name: 'dm-flakey-error', lbs: 512, size: 4 * MiB, layers: [{ id: 'd', kind: 'disk', size: 4 * MiB }, { id: 'top', kind: 'dm-flakey', on: 'd', upSeconds: 1, downSeconds: 1, mode: 'error' }] },
  { name: 'dm-flakey-drop', lbs: 512, size: 4 * MiB, layers: [{ id: 'd', kind: 'disk', size: 4 * MiB }, { id: 'top', kind: 'dm-flakey', on: 'd', upSeconds: 1, downSeconds: 1, mode: 'drop-writes' }] },
  { name: 'md-raid0', lbs: 512, size: 8 * MiB, layers: [{ id: 'a', kind: 'disk', size: 4 * MiB }, { id: 'b', kind: 'disk', size: 4 * MiB }, { id: 'top', kind: 'md', level: 0, members: ['a', 'b'] }] },
  { name: 'snapshot-origin', lbs: 512, size: 4 * MiB, layers: [{ id: 'd', kind: 'disk', size: 4 * MiB }, { id: 'top', kind: 'dm-snapshot-origin', on: 'd' }] },
  { name: 'scsi-debug-dif', lbs: 4096, size: 4 * MiB, layers: [{ id: 'top', kind: 'scsi-debug', size: 4 * MiB, logicalBlockSize: 4096, dif: 1, dix: true }] },
];

/** A small valid case whose program works on the top block device of one of STACKS. */
export function stackedCase(opts: ArbOptions = {}): fc.Arbitrary<Built & { stack: string }> {
  const o: Required<ArbOptions> = { maxThreads: 2, maxPhases: 3, maxOpsPerPhase: 4, ...opts };
  return fc
    .record({ stack: fc.constantFrom(...STACKS), seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }) })
    .chain(({ stack, seed }) =>
      // Keep IO in the first 256 KiB (and a little past the end of the smaller devices).
      program(diskOps(stack.lbs, 'top', Math.min(stack.size, DISK_SIZE)), o).map((threads) => ({ stack, input: caseInput(stack.layers, threads, { seed, name: `arb-${stack.name}` }) })),
    )
    .map(({ stack, input }) => ({ ...build(input), stack: stack.name }));
}
