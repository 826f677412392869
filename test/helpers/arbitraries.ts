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

function diskOps(lbs: number): fc.Arbitrary<OpMaker> {
  const range = fc.record({ sector: fc.nat(DISK_SIZE / 512 + 8), sectors: fc.integer({ min: 1, max: 32 }) });
  return fc.oneof(
    { weight: 4, arbitrary: dataOp('write', 'd', DISK_SIZE + 4096, lbs) },
    { weight: 4, arbitrary: dataOp('read', 'd', DISK_SIZE + 4096, lbs) },
    { weight: 1, arbitrary: fc.constant((id: number): OpInput => ({ kind: 'fsync', id, target: 'd' })) },
    { weight: 1, arbitrary: fc.constant((id: number): OpInput => ({ kind: 'flush', id, target: 'd' })) },
    { weight: 1, arbitrary: fc.constant((id: number): OpInput => ({ kind: 'drop-caches', id })) },
    {
      weight: 1,
      arbitrary: fc
        .record({ r: range, mode: fc.constantFrom('discard', 'zeroout', 'secure') })
        .map(({ r, mode }) => (id: number): OpInput => ({ kind: 'discard', id, target: 'd', offset: r.sector * 512, length: r.sectors * 512, mode }) as OpInput),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({ r: range, mode: fc.constantFrom('zero-range', 'zero-range-keep-size', 'punch-hole', 'allocate') })
        .map(({ r, mode }) => (id: number): OpInput => ({ kind: 'fallocate', id, target: 'd', offset: r.sector * 512, length: r.sectors * 512, mode }) as OpInput),
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
