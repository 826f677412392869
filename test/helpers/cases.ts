/**
 * Small builders for model tests: a case from a few ops on a disk, a file on
 * a filesystem or any stack; the model's predicted observation; judging an
 * observation (possibly edited) and picking out the divergences of one op.
 *
 * Everything here goes through the public model API (validateCase,
 * predictObservation, judgeObservation), as a target would.
 */
import { z } from 'zod';
import {
  type Case,
  type CaseInput,
  type Divergence,
  type Observation,
  type OpResult,
  type StackInfo,
  Layer,
  Op,
  judgeObservation,
  predictObservation,
  validateCase,
} from '../../model/index.ts';

export type OpInput = z.input<typeof Op>;
export type LayerInput = z.input<typeof Layer>;
export type ObservedSrc = 'zero' | 'unknown' | 'error' | { op: number; delta: number };
export type Run = { offset: number; length: number; src: ObservedSrc };

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const PAGE = 4096;

/** A validated case with the stack analysis the oracle needs. */
export interface Built {
  c: Case;
  info: StackInfo;
}

export interface CaseOpts {
  seed?: number;
  name?: string;
}

/** Ops for one thread, or one list per thread. */
export type Program = OpInput[] | OpInput[][];

function threadsOf(p: Program): OpInput[][] {
  return p.length > 0 && Array.isArray(p[0]) ? (p as OpInput[][]) : [p as OpInput[]];
}

export function caseInput(layers: LayerInput[], program: Program, opts: CaseOpts = {}): CaseInput {
  return {
    format: 'blockfarm-case/1',
    name: opts.name ?? 'test',
    seed: opts.seed ?? 12345,
    stack: { layers: layers as CaseInput['stack']['layers'] },
    program: { threads: threadsOf(program).map((ops) => ({ ops: ops as CaseInput['program']['threads'][number]['ops'] })) },
  };
}

/** Validate or throw with the validator's messages. */
export function build(input: CaseInput): Built {
  const v = validateCase(input);
  if (!v.ok) throw new Error(`invalid case:\n${v.issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
  return { c: v.value, info: v.info };
}

/** Validation messages of a case that must be invalid ([] when it is valid). */
export function issuesOf(input: CaseInput): string[] {
  const v = validateCase(input);
  return v.ok ? [] : v.issues.map((i) => `${i.path}: ${i.message}`);
}

export function stackCase(layers: LayerInput[], program: Program, opts: CaseOpts = {}): Built {
  return build(caseInput(layers, program, opts));
}

export interface DiskOpts extends CaseOpts {
  size?: number;
  lbs?: 512 | 1024 | 2048 | 4096;
  pbs?: 512 | 1024 | 2048 | 4096;
}

/** A bare disk 'd' (1 MiB, 512-byte sectors unless told) and a program on it. */
export function diskCase(program: Program, opts: DiskOpts = {}): Built {
  const disk: LayerInput = { id: 'd', kind: 'disk', size: opts.size ?? MiB, logicalBlockSize: opts.lbs ?? 512 };
  if (opts.pbs) (disk as { physicalBlockSize?: number }).physicalBlockSize = opts.pbs;
  return stackCase([disk], program, opts);
}

export type FsType = 'ext4' | 'xfs' | 'btrfs' | 'gfs2';

export interface FileOpts extends CaseOpts {
  /** Initial file size (a hole). */
  fileSize?: number;
  fsBlockSize?: 1024 | 2048 | 4096;
  diskSize?: number;
  lbs?: 512 | 1024 | 2048 | 4096;
  /** More files on the same fs: ids 'g', 'h', ... */
  extraFiles?: number;
}

/** Device sizes that every filesystem type accepts with room for small files. */
export const FS_DISK: Record<FsType, number> = { ext4: 64 * MiB, xfs: 512 * MiB, btrfs: 256 * MiB, gfs2: 128 * MiB };

/** Disk 'd', filesystem 'fs' of the given type, file 'f' (and 'g', 'h' with extraFiles). */
export function fileLayers(fsType: FsType, opts: FileOpts = {}): LayerInput[] {
  const layers: LayerInput[] = [
    { id: 'd', kind: 'disk', size: opts.diskSize ?? FS_DISK[fsType], logicalBlockSize: opts.lbs ?? 512 },
    { id: 'fs', kind: 'fs', on: 'd', type: fsType, blockSize: opts.fsBlockSize ?? 4096 },
    { id: 'f', kind: 'file', on: 'fs', name: 'f', size: opts.fileSize ?? 0 },
  ];
  const more = ['g', 'h', 'i'];
  for (let k = 0; k < (opts.extraFiles ?? 0); k++) layers.push({ id: more[k]!, kind: 'file', on: 'fs', name: more[k]!, size: 0 });
  return layers;
}

export function fileCase(fsType: FsType, program: Program, opts: FileOpts = {}): Built {
  return stackCase(fileLayers(fsType, opts), program, opts);
}

// ---- op builders --------------------------------------------------------------------------

type Extra = Record<string, unknown>;

export function write(id: number, target: string, offset: number, length: number, extra: Extra = {}): OpInput {
  return { kind: 'write', id, target, offset, length, ...extra } as OpInput;
}
export function read(id: number, target: string, offset: number, length: number, extra: Extra = {}): OpInput {
  return { kind: 'read', id, target, offset, length, ...extra } as OpInput;
}
export function fallocate(id: number, target: string, mode: string, offset: number, length: number): OpInput {
  return { kind: 'fallocate', id, target, mode, offset, length } as OpInput;
}
export function truncate(id: number, target: string, size: number): OpInput {
  return { kind: 'truncate', id, target, size };
}
export function barrier(id: number, name = 'b'): OpInput {
  return { kind: 'barrier', id, name };
}
export function op(kind: string, id: number, fields: Extra = {}): OpInput {
  return { kind, id, ...fields } as OpInput;
}

// ---- observing and judging ------------------------------------------------------------------

/** The run the model predicts (what a target that does exactly the model's first choice reports). */
export function observe(b: Built): Observation {
  return predictObservation(b.c, b.info);
}

export function judge(b: Built, obs: Observation) {
  const a = judgeObservation(b.c, b.info, obs);
  if (a.incomplete !== undefined) throw new Error(`incomplete observation: ${a.incomplete}`);
  return a;
}

export function divergences(b: Built, obs: Observation): Divergence[] {
  const a = judge(b, obs);
  return a.verdict === 'divergence' ? a.divergences : [];
}

/** Divergences that name op `id`. */
export function opDivergences(b: Built, obs: Observation, id: number): Divergence[] {
  return divergences(b, obs).filter((d) => d.op === id);
}

export function resultOf(obs: Observation, id: number): OpResult {
  const r = obs.results.find((x) => x.op === id);
  if (!r) throw new Error(`no result for op ${id}`);
  return r;
}

/** A copy of the observation with op `id`'s result replaced (fields not given are dropped). */
export function withResult(obs: Observation, id: number, r: Omit<OpResult, 'op'>): Observation {
  const copy = structuredClone(obs);
  const i = copy.results.findIndex((x) => x.op === id);
  if (i < 0) throw new Error(`no result for op ${id}`);
  copy.results[i] = { op: id, ...r };
  return copy;
}

/** A copy with the final content of `obj` replaced. */
export function withFinal(obs: Observation, obj: string, size: number, extents: Run[]): Observation {
  const copy = structuredClone(obs);
  copy.final[obj] = { size, extents };
  return copy;
}

/** Is this result of op `id` allowed, judging only that op (later ops may follow the change)? */
export function allows(b: Built, id: number, r: Omit<OpResult, 'op'>, base: Observation = observe(b)): boolean {
  return opDivergences(b, withResult(base, id, r), id).length === 0;
}

export function ok(ret: number, data?: Run[]): Omit<OpResult, 'op'> {
  return data ? { ret, data } : { ret };
}
export function err(errno: string): Omit<OpResult, 'op'> {
  return { ret: -1, errno };
}

/** A run of op `op`'s pattern (delta 0 unless told). */
export function opRun(offset: number, length: number, op: number, delta = 0): Run {
  return { offset, length, src: { op, delta } };
}
export function zeroRun(offset: number, length: number): Run {
  return { offset, length, src: 'zero' };
}
export function unknownRun(offset: number, length: number): Run {
  return { offset, length, src: 'unknown' };
}

/** Runs from a compact list of [length, source] (offsets accumulate from `start`). */
export function runs(start: number, ...parts: Array<[number, number | 'zero' | 'unknown' | 'error' | { op: number; delta: number }]>): Run[] {
  const out: Run[] = [];
  let at = start;
  for (const [len, s] of parts) {
    const src: ObservedSrc = typeof s === 'number' ? { op: s, delta: 0 } : s;
    out.push({ offset: at, length: len, src });
    at += len;
  }
  return out;
}
