/**
 * Which scenarios of SCENARIOS.md a case exercises, from its structure alone:
 * the stack, the ops and where they sit (thread, phase). Names, descriptions
 * and meta are never read, so a generated case is judged by what it does,
 * not by what its generator meant.
 *
 * - S1: a loop device over a file, or over a device with 4 KiB blocks, in
 *   direct-IO mode or with a logical block size other than the backing
 *   store's; or LOOP_SET_DIRECT_IO / LOOP_SET_BLOCK_SIZE on a loop; or md
 *   raid0 over loop devices. The program must do IO through it.
 * - S2: an O_DIRECT read through io_uring or preadv2 into an anonymous
 *   buffer with pages never touched, or into a shared mapping, of a file
 *   range spanning at least two extents written separately (writes with
 *   writeback in between).
 * - S3: authenticated dm-crypt over dm-integrity, or a scsi_debug disk with
 *   protection information under device-mapper layers, with IO through it.
 * - S4: a dm suspend/reload/resume or snapshot create/remove/merge while
 *   another thread does IO through that device in the same phase; or a
 *   dm-snapshot whose origin is written by the program (a live origin).
 * - S5: two threads on one file in the same phase, one writing to it
 *   (through a shared mapping, or with write(2): xfs/559's stale mapping
 *   during a write), the other changing its extents with fallocate (any
 *   mode) or truncate.
 */
import { type Case, DM_KINDS, type Op, type StackInfo, analyzeStack } from '../../model/index.ts';

export const SCENARIO_TAGS = ['S1', 'S2', 'S3', 'S4', 'S5'] as const;
export type ScenarioTag = (typeof SCENARIO_TAGS)[number];

export interface ScenarioMatch {
  tag: ScenarioTag;
  /** One line on what in the case matched. */
  why: string;
}

interface Placed {
  op: Op;
  thread: number;
  index: number;
  phase: number;
}

const PAGE = 4096;
const IO_KINDS = new Set<Op['kind']>(['read', 'write', 'mmap-write', 'mmap-read', 'fallocate', 'truncate', 'discard', 'fsync', 'sync-file-range', 'flush', 'msync']);
const CONTROL_KINDS = new Set<Op['kind']>(['dm-suspend', 'dm-reload', 'dm-resume', 'snapshot-create', 'snapshot-remove', 'snapshot-merge']);
const WRITE_KINDS = new Set<Op['kind']>(['write', 'mmap-write', 'fallocate', 'truncate', 'discard']);

function place(c: Case): Placed[] {
  const out: Placed[] = [];
  c.program.threads.forEach((t, thread) => {
    let phase = 0;
    t.ops.forEach((op, index) => {
      out.push({ op, thread, index, phase });
      if (op.kind === 'barrier') phase++;
    });
  });
  return out;
}

const targetOf = (op: Op): string | undefined => ('target' in op ? op.target : undefined);

/** The op's target is `id` or sits (through any number of layers) on it. */
function reaches(info: StackInfo, target: string | undefined, id: string): boolean {
  return target !== undefined && (target === id || info.below(target).some((l) => l.id === id));
}

function exercised(info: StackInfo, ops: readonly Placed[], id: string): boolean {
  return ops.some((x) => IO_KINDS.has(x.op.kind) && reaches(info, targetOf(x.op), id));
}

function s1(info: StackInfo, ops: readonly Placed[]): string | undefined {
  for (const l of info.layers) {
    if (l.kind === 'md' && l.level === 0 && l.members.some((m) => info.layer(m)?.kind === 'loop') && exercised(info, ops, l.id))
      return `md raid0 '${l.id}' over loop devices`;
    if (l.kind !== 'loop' || !exercised(info, ops, l.id)) continue;
    const mine = ops.filter((x) => targetOf(x.op) === l.id);
    const ioctls = mine.filter((x) => x.op.kind === 'loop-set-direct-io' || x.op.kind === 'loop-set-block-size');
    if (ioctls.length) return `loop '${l.id}' reconfigured by ${ioctls.map((x) => x.op.kind).join(', ')} under IO`;
    const backing = info.layer(l.on);
    if (!backing) continue;
    let unit: number;
    if (backing.kind === 'file') {
      const fsl = info.fsOf(backing.id);
      const dev = fsl ? info.geometry(fsl.on) : undefined;
      unit = Math.max(fsl?.blockSize ?? PAGE, ...(dev?.logicalBlockSizes ?? [512]));
    } else unit = Math.max(...(info.geometry(backing.id)?.logicalBlockSizes ?? [512]));
    if (backing.kind !== 'file' && unit < PAGE) continue;
    const what = backing.kind === 'file' ? `file '${backing.id}'` : `${unit}-byte-block device '${backing.id}'`;
    if (l.directIo) return `loop '${l.id}' in direct-IO mode over ${what}`;
    const lbs = l.logicalBlockSize ?? 512;
    if (lbs !== unit) return `loop '${l.id}' with ${lbs}-byte blocks over ${what} (${unit}-byte blocks)`;
  }
  return undefined;
}

/** Ranges of a file written with writeback between them, as of just before `before`. */
function separateWrites(ops: readonly Placed[], file: string, before: Placed): Array<Array<[number, number]>> {
  const prior = ops
    .filter((x) => targetOf(x.op) === file && (x.phase < before.phase || (x.thread === before.thread && x.phase === before.phase && x.index < before.index)))
    .sort((a, b) => a.phase - b.phase || a.thread - b.thread || a.index - b.index);
  const groups: Array<Array<[number, number]>> = [];
  let pending: Array<[number, number]> = [];
  const flush = () => {
    if (pending.length) groups.push(pending);
    pending = [];
  };
  for (const { op } of prior) {
    switch (op.kind) {
      case 'write':
        if (op.direct) groups.push([[op.offset, op.offset + op.length]]);
        else {
          pending.push([op.offset, op.offset + op.length]);
          if (op.dsync) flush();
        }
        break;
      case 'mmap-write':
        pending.push([op.offset, op.offset + op.length]);
        break;
      case 'fallocate':
        if (op.mode === 'allocate' || op.mode === 'keep-size' || op.mode.startsWith('zero-range')) groups.push([[op.offset, op.offset + op.length]]);
        break;
      case 'fsync':
      case 'sync-file-range':
        flush();
        break;
      case 'msync':
        if (op.mode === 'sync') flush();
        break;
      default:
        break;
    }
  }
  return groups;
}

function s2(info: StackInfo, ops: readonly Placed[]): string | undefined {
  for (const x of ops) {
    const op = x.op;
    if (op.kind !== 'read' || !op.direct || (op.via !== 'io_uring' && op.via !== 'pvec')) continue;
    if (info.layer(op.target)?.kind !== 'file') continue;
    const b = op.buffer;
    const pages = Math.ceil((b.align + op.length) / PAGE);
    const partial = b.placement === 'anon' && b.touchedPages < pages;
    if (!partial && b.placement !== 'mmap') continue;
    const s = op.offset;
    const e = op.offset + op.length;
    const hit = separateWrites(ops, op.target, x).filter((g) => g.some(([gs, ge]) => gs < e && s < ge));
    if (hit.length >= 2)
      return `O_DIRECT ${op.via} read op ${op.id} into ${partial ? `an anonymous buffer with ${pages - b.touchedPages} of ${pages} pages untouched` : 'a shared mapping'} over ${hit.length} separately written extents of '${op.target}'`;
  }
  return undefined;
}

function s3(info: StackInfo, ops: readonly Placed[]): string | undefined {
  for (const l of info.layers) {
    if (l.kind === 'dm-crypt' && l.integrity !== 'none' && info.layer(l.on)?.kind === 'dm-integrity' && exercised(info, ops, l.id))
      return `authenticated dm-crypt '${l.id}' (${l.integrity}) over dm-integrity '${l.on}'`;
    if (l.kind === 'scsi-debug' && l.dif !== 0) {
      const dm = info.layers.find((u) => DM_KINDS.has(u.kind) && info.below(u.id).some((x) => x.id === l.id) && exercised(info, ops, u.id));
      if (dm) return `scsi_debug '${l.id}' with DIF type ${l.dif}${l.dix ? ' and DIX' : ''} under ${dm.kind} '${dm.id}'`;
    }
  }
  return undefined;
}

function s4(info: StackInfo, ops: readonly Placed[]): string | undefined {
  for (const k of ops) {
    if (!CONTROL_KINDS.has(k.op.kind)) continue;
    const dev = targetOf(k.op)!;
    const l = info.layer(dev);
    const devices = l?.kind === 'dm-snapshot' ? [dev, l.origin] : [dev];
    const other = ops.find((x) => x.thread !== k.thread && x.phase === k.phase && IO_KINDS.has(x.op.kind) && devices.some((d) => reaches(info, targetOf(x.op), d)));
    if (other) return `${k.op.kind} op ${k.op.id} on '${dev}' while thread ${other.thread} runs ${other.op.kind} op ${other.op.id} through it`;
  }
  for (const l of info.layers) {
    if (l.kind !== 'dm-snapshot') continue;
    const w = ops.find((x) => WRITE_KINDS.has(x.op.kind) && reaches(info, targetOf(x.op), l.origin));
    if (w) return `dm-snapshot '${l.id}' of origin '${l.origin}', which ${w.op.kind} op ${w.op.id} changes`;
  }
  return undefined;
}

function s5(info: StackInfo, ops: readonly Placed[]): string | undefined {
  for (const f of info.layers) {
    if (f.kind !== 'file') continue;
    const mine = ops.filter((x) => targetOf(x.op) === f.id);
    // Writes through a mapping first: they are the heart of the scenario.
    const writers = [...mine.filter((x) => x.op.kind === 'mmap-write'), ...mine.filter((x) => x.op.kind === 'write')];
    for (const m of writers) {
      const r = mine.find((x) => x.thread !== m.thread && x.phase === m.phase && (x.op.kind === 'fallocate' || x.op.kind === 'truncate'));
      if (r) return `${m.op.kind} op ${m.op.id} racing ${r.op.kind}${r.op.kind === 'fallocate' ? ` (${r.op.mode})` : ''} op ${r.op.id} on '${f.id}'`;
    }
  }
  return undefined;
}

const CHECKS: ReadonlyArray<readonly [ScenarioTag, (info: StackInfo, ops: readonly Placed[]) => string | undefined]> = [
  ['S1', s1],
  ['S2', s2],
  ['S3', s3],
  ['S4', s4],
  ['S5', s5],
];

/** The scenarios a case exercises, each with what matched. */
export function explainCase(c: Case): ScenarioMatch[] {
  const { info } = analyzeStack(c.stack);
  const ops = place(c);
  const out: ScenarioMatch[] = [];
  for (const [tag, check] of CHECKS) {
    const why = check(info, ops);
    if (why) out.push({ tag, why });
  }
  return out;
}

/** The scenarios a case exercises (S1..S5, in order; empty for none). */
export function classifyCase(c: Case): ScenarioTag[] {
  return explainCase(c).map((m) => m.tag);
}
