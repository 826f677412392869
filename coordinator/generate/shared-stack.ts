/**
 * Programs that share one block stack. A target that keeps a case's stack
 * set up may run the next case's program on it (model/stack-reuse.ts) when
 * both build the identical stack and the stack comes back as new once its
 * disks are zeroed. This file makes such cases:
 *
 * - programForStack(leader, seed, opts): the leader's stack and data seed
 *   (dm-crypt keys come from the seed, so it must not change) with a freshly
 *   drawn program of data ops only, numbered from opts.firstOpId: the data
 *   pattern is a function of (seed, op id, offset), so programs of one group
 *   with disjoint ids can never take each other's leftovers for their own.
 * - stackLeaderCase(seed, opts): a case on a stack drawn for sharing (only
 *   layer kinds that reset with their disks), for groups whose first case
 *   has no such stack.
 * - followerFirstOpId(leader, position, opts): where follower `position`
 *   (1, 2, ...) of a group starts numbering, past everything before it.
 *
 * The ops come from the same generators as every other program (genOpFor,
 * fillData, ensureWork), filtered by what stackReuseRefusal accepts, so the
 * predicate stays the one definition of "data ops only".
 */
import { CASE_FORMAT, type Case, type CaseInput, LAYER_KINDS, type Layer, type LayerKind, type StackInfo, analyzeStack, layerModule, stackReuseRefusal } from '../../model/index.ts';
import { caseHash } from '../../corpus/store/hash.ts';
import { type Draw, drawFor } from './draw.ts';
import { ensureWork, fillData, opEnv } from './generic.ts';
import { type GenerateOptions, GenerateOptionsError, type Normalized, normalizeOptions } from './options.ts';
import { type OpDraft, type OpEnv, type OpInput, genCorrupt, genOpFor, genRead, genWrite } from './ops/index.ts';
import { ProgramBuilder, threadCount } from './program.ts';
import { repairCase } from './repair.ts';
import { StackBuilder } from './stack.ts';
import { type IoTarget, ioTargets } from './targets.ts';

const MAX_OP_ID = 2 ** 30 - 1;
const MiB = 1024 * 1024;
/** Follower ids start at multiples of this (1001, 2001, ...): easy to tell apart in a report. */
const ID_BLOCK = 1000;

export interface FollowerOptions extends GenerateOptions {
  /** The first op id of the program; its ops are numbered from here up, at most maxOps of them. */
  firstOpId: number;
  /** Which follower of its group this is, for the name (`<leader name>-p<position>`). @defaultValue 1 */
  position?: number;
}

/** Every layer of the stack is one that zeroing its disks resets (model/stack-reuse.ts, first half). */
export function stackResetsWithDisks(info: StackInfo): boolean {
  return info.layers.every((l) => layerModule(l).resetsWithDisks?.(l) === true);
}

function maxOpId(c: Pick<Case, 'program'>): number {
  return c.program.threads.reduce((n, t) => t.ops.reduce((m, op) => Math.max(m, op.id), n), 0);
}

/** First op id of follower `position` of a group led by `leader`: blocks of ids past the leader's and past any follower's maxOps. */
export function followerFirstOpId(leader: Case, position: number, opts: GenerateOptions = {}): number {
  const o = normalizeOptions(opts);
  if (!Number.isInteger(position) || position < 1) throw new GenerateOptionsError(`a follower's position must be a whole number >= 1, not ${position}`);
  const block = Math.ceil((Math.max(maxOpId(leader), o.maxOps) + 1) / ID_BLOCK) * ID_BLOCK;
  return position * block + 1;
}

/** An op drawn by genOpFor for the target, drawn again until it is one that leaves the stack as it was built. */
function dataOpMaker(keepsStack: (op: OpDraft) => boolean) {
  return (d: Draw, t: IoTarget, env: OpEnv): OpDraft => {
    for (let i = 0; i < 8; i++) {
      const op = genOpFor(d, t, env);
      if (keepsStack(op)) return op;
    }
    return d.chance(0.5) ? genWrite(d, t, env) : genRead(d, t, env);
  };
}

/** A program of data ops on the stack's IO targets: one to four threads (racing when they share a target), one to three phases. */
function dataProgram(d: Draw, o: Normalized, info: StackInfo, keepsStack: (op: OpDraft) => boolean): OpInput[][] {
  const targets = ioTargets(info);
  const pb = new ProgramBuilder(threadCount(d, o.maxThreads), d.weighted<number>([[4, 1], [3, 2], [2, 3]]));
  const env = opEnv(o, targets);
  // Now and then bytes changed under an upper layer (a data op too: the stack stays as built).
  const under = info.layers.filter((l) => LAYER_KINDS[l.kind].role === 'block' && info.usersOf(l.id).length > 0);
  if (under.length && d.chance(0.08)) {
    const corrupt = genCorrupt(d, info, d.pick(under).id);
    if (keepsStack(corrupt)) pb.insert(d, d.int(0, pb.threads - 1), d.int(0, pb.phases - 1), corrupt);
  }
  const room = Math.max(4, o.maxOps - pb.size);
  fillData(d, pb, targets, env, d.int(Math.min(4, room), Math.max(4, Math.min(room, d.chance(0.7) ? 24 : room))), undefined, dataOpMaker(keepsStack));
  ensureWork(d, pb, targets, env);
  return pb.build(o.maxOps);
}

/** The smallest program: a write and a read of one block on the first IO target. */
function minimalProgram(info: StackInfo): OpInput[][] {
  const t = ioTargets(info)[0];
  if (!t) return [];
  return [[
    { kind: 'write', id: 1, target: t.id, offset: 0, length: t.unit },
    { kind: 'read', id: 2, target: t.id, offset: 0, length: t.unit },
  ]];
}

function renumber(threads: OpInput[][], firstOpId: number): OpInput[][] {
  return threads.map((ops) => ops.map((op) => ({ ...op, id: op.id + firstOpId - 1 }) as OpInput));
}

interface Base {
  name: string;
  seed: number;
  stack: Case['stack'];
  meta: Case['meta'];
}

/**
 * A valid case of `base` with a data-only program drawn from `d`: full
 * programs first, then single-threaded short ones, then the minimal one.
 */
function withDataProgram(base: Base, info: StackInfo, d: Draw, o: Normalized, firstOpId: number): Case {
  if (!Number.isInteger(firstOpId) || firstOpId < 1 || firstOpId - 1 + o.maxOps > MAX_OP_ID)
    throw new GenerateOptionsError(`firstOpId must be a whole number from 1 to ${MAX_OP_ID - o.maxOps + 1}, not ${firstOpId}`);
  const probe: Case = { format: CASE_FORMAT, name: base.name, seed: base.seed, stack: base.stack, program: { threads: [{ ops: [] }] }, meta: base.meta };
  const keepsStack = (op: OpDraft) => stackReuseRefusal({ ...probe, program: { threads: [{ ops: [{ ...op, id: 1 } as Case['program']['threads'][number]['ops'][number]] }] } }, info) === undefined;
  const small = normalizeOptions({ supports: { layerKinds: [...o.kinds], fsTypes: o.fsTypes }, maxOps: Math.min(o.maxOps, 16), maxThreads: 1, misaligned: o.misaligned, diskSize: o.diskSize });
  const plans: Array<() => OpInput[][]> = [
    ...Array.from({ length: 4 }, () => () => dataProgram(d, o, info, keepsStack)),
    ...Array.from({ length: 2 }, () => () => dataProgram(d, small, info, keepsStack)),
    () => minimalProgram(info),
  ];
  for (const plan of plans) {
    const threads = plan();
    if (!threads.length) continue;
    const input: CaseInput = { format: CASE_FORMAT, name: base.name, seed: base.seed, stack: base.stack, program: { threads: renumber(threads, firstOpId).map((ops) => ({ ops })) }, meta: base.meta };
    const r = repairCase(input);
    if (!r) continue;
    const ops = r.value.program.threads.flatMap((t) => t.ops);
    if (!ops.some((op) => op.kind !== 'barrier') || ops.length > o.maxOps) continue;
    if (stackReuseRefusal(r.value, info) !== undefined) continue;
    return r.value;
  }
  throw new Error(`no data program validates on the stack of '${base.name}'`);
}

/**
 * A case with the leader's stack and data seed and a new program of data ops
 * only, drawn from `seed`, its op ids from opts.firstOpId up. The stack must
 * be one that zeroing its disks resets (stackResetsWithDisks): anything else
 * could not be shared, and is refused with an error naming the layer.
 */
export function programForStack(leader: Case, seed: number, opts: FollowerOptions): Case {
  const o = normalizeOptions(opts);
  const position = opts.position ?? 1;
  const { info, issues } = analyzeStack(leader.stack);
  if (issues.length) throw new Error(`programForStack: the stack of '${leader.name}' does not validate: ${issues[0]!.message}`);
  const foreign = leader.stack.layers.find((l) => !o.kinds.has(l.kind));
  if (foreign) throw new Error(`programForStack: layer '${foreign.id}' (${foreign.kind}) of '${leader.name}' is not one this target builds`);
  if (!stackResetsWithDisks(info)) throw new Error(`programForStack: ${stackReuseRefusal(leader, info)} (in '${leader.name}'), so its stack cannot be shared`);
  const base: Base = {
    name: `${leader.name.slice(0, 120)}-p${position}`,
    seed: leader.seed,
    stack: structuredClone(leader.stack),
    meta: { origin: 'generated', parent: caseHash(leader), notes: `program ${position} for the stack of ${leader.name}` },
  };
  return withDataProgram(base, info, drawFor(seed), o, opts.firstOpId);
}

/** Layer kinds whose module can reset with its disks (for some parameters), and how often a shared stack grows each. */
function resettableKinds(o: Normalized): Array<readonly [number, LayerKind]> {
  return (Object.keys(LAYER_KINDS) as LayerKind[])
    .filter((k) => k !== 'disk' && LAYER_KINDS[k].resetsWithDisks !== undefined && o.kinds.has(k))
    .map((k) => [1, k] as const);
}

/**
 * A case on a stack drawn to be shared: one to three disks and up to four
 * layers of the kinds that reset with their disks (each drawn by its module's
 * generator and kept only when that holds: plain unwiped dm-crypt, say), with
 * a data-only program numbered from 1. Disks are 16 to 64 MiB unless
 * opts.diskSize says otherwise: a target reads every object back after each
 * program and zeroes the disks between programs, both in time that grows
 * with the size.
 */
export function stackLeaderCase(seed: number, opts: GenerateOptions & { name?: string } = {}): Case {
  const o = normalizeOptions({ ...opts, diskSize: opts.diskSize ?? { min: 16 * MiB, max: 64 * MiB } });
  const d = drawFor(seed);
  const b = new StackBuilder(d, o);
  for (let i = d.weighted<number>([[5, 1], [4, 2], [1, 3]]); i > 0; i--) b.grow('disk');
  const grow = resettableKinds(o);
  const resets = (layers: readonly Layer[]) => layers.every((l) => layerModule(l).resetsWithDisks?.(l) === true);
  if (grow.length) for (let i = d.int(0, 4); i > 0; i--) b.growAny(grow, { accept: resets });
  const dataSeed = d.int(0, 0xffffffff);
  const base: Base = {
    name: opts.name ?? `gen-${dataSeed.toString(16).padStart(8, '0')}`,
    seed: dataSeed,
    stack: { layers: b.layers },
    meta: { origin: 'generated', notes: 'recipe shared-stack' },
  };
  return withDataProgram(base, b.info, d, o, 1);
}
