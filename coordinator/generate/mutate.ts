/**
 * Mutation of corpus cases: small changes to a case that already did
 * something interesting. Each attempt applies one to three mutations (op
 * fields, ops added, dropped, duplicated or spliced from a donor case, a
 * racing thread, a barrier more or less, a layer's parameters drawn again by
 * its module's generator, the data seed), then repairs what the validator
 * objects to. An attempt that leaves the case invalid or unchanged is thrown
 * away; after enough of them the data seed alone changes, which is always
 * valid, so mutateCase always returns a valid case different from its input.
 */
import { type Case, type CaseInput, LAYER_KINDS, type Layer, type StackInfo, analyzeStack } from '../../model/index.ts';
import type { LayerGenContext } from '../../model/layers/kind.ts';
import { caseHash, canonicalJson, caseEssence } from '../../corpus/store/hash.ts';
import { type Draw, drawFor } from './draw.ts';
import { type GenerateOptions, type Normalized, normalizeOptions } from './options.ts';
import { type OpDraft, type OpInput, genOpFor } from './ops/index.ts';
import { MAX_ORDERS, racingOrders } from './program.ts';
import { repairCase } from './repair.ts';
import { opEnv } from './generic.ts';
import { type IoTarget, ioTargets } from './targets.ts';

export interface MutateOptions extends GenerateOptions {
  /** Cases whose ops may be spliced in. */
  donors?: readonly Case[];
}

type Mutable = { seed: number; stack: { layers: Layer[] }; program: { threads: Array<{ name?: string; ops: OpInput[] }> } };

interface Ctx {
  d: Draw;
  o: Normalized;
  info: StackInfo;
  targets: IoTarget[];
  donors: readonly Case[];
  nextId: () => number;
}

type Mutator = (m: Mutable, x: Ctx) => boolean;

const PAGE = 4096;

function allOps(m: Mutable): Array<{ t: number; i: number; op: OpInput }> {
  return m.program.threads.flatMap((th, t) => th.ops.map((op, i) => ({ t, i, op })));
}

function pickOp(m: Mutable, x: Ctx, ok: (op: OpInput) => boolean): { t: number; i: number; op: OpInput } | undefined {
  const ops = allOps(m).filter((e) => ok(e.op));
  return ops.length ? x.d.pick(ops) : undefined;
}

/** A new offset or length: aligned differently, moved by a sector or a page, or anywhere. */
function nudge(d: Draw, v: number, positive: boolean): number {
  const out = d.weighted<() => number>([
    [2, () => v + 512],
    [2, () => v - 512],
    [2, () => v + PAGE],
    [1, () => v - PAGE],
    [1, () => v * 2],
    [1, () => Math.floor(v / 2)],
    [1, () => v - (v % PAGE)],
    [1, () => v + d.int(1, 511)],
    [1, () => d.int(0, 1 << 20)],
  ])();
  return Math.max(positive ? 1 : 0, out);
}

/** Change one field of a read or write: offset, length, path, vectors, flags, buffer. */
const tweakData: Mutator = (m, x) => {
  const e = pickOp(m, x, (op) => op.kind === 'read' || op.kind === 'write');
  if (!e || (e.op.kind !== 'read' && e.op.kind !== 'write')) return false;
  const op = { ...e.op };
  const d = x.d;
  switch (d.pick(['offset', 'length', 'via', 'vectors', 'direct', 'nowait', 'buffer', 'align', 'dsync'] as const)) {
    case 'offset': op.offset = nudge(d, op.offset, false); break;
    case 'length': op.length = Math.min(nudge(d, op.length, true), 8 << 20); break;
    case 'via': op.via = d.pick(['psync', 'pvec', 'io_uring'] as const); if (op.via === 'psync') { op.vectors = 1; op.nowait = false; } break;
    case 'vectors': op.via = op.via === 'psync' ? 'io_uring' : op.via; op.vectors = d.int(1, 8); break;
    case 'direct': op.direct = !op.direct; break;
    case 'nowait': op.via = op.via === 'psync' ? 'pvec' : op.via; op.nowait = !op.nowait; if (op.nowait) delete op.mustSucceed; break;
    case 'buffer': {
      const files = x.targets.filter((t) => t.kind === 'file');
      const pages = Math.ceil(op.length / PAGE) + 1;
      op.buffer = d.weighted<NonNullable<typeof op.buffer>>([
        [2, { placement: 'heap', align: 0 }],
        [2, { placement: 'anon', touchedPages: d.int(0, Math.min(pages, 4)), align: 0 }],
        [files.length ? 1 : 0, { placement: 'mmap', file: files.length ? d.pick(files).id : 'none', offset: d.int(0, 16) * PAGE, align: 0 }],
      ]);
      break;
    }
    case 'align': {
      const b = op.buffer ?? { placement: 'heap' as const, align: 0 };
      op.buffer = { ...b, align: d.pick([0, 512, 1024, 2048, d.int(1, 4095)]) };
      if (op.buffer.placement === 'anon') op.buffer.touchedPages = Math.min(op.buffer.touchedPages, Math.ceil(((op.buffer.align ?? 0) + op.length) / PAGE));
      break;
    }
    case 'dsync': if (op.kind !== 'write') return false; op.dsync = !op.dsync; break;
  }
  m.program.threads[e.t]!.ops[e.i] = op;
  return true;
};

/** Change a field of any other op: a mode, a range, a size, a flag. */
const tweakOther: Mutator = (m, x) => {
  const e = pickOp(m, x, (op) => op.kind !== 'read' && op.kind !== 'write' && op.kind !== 'barrier');
  if (!e) return false;
  const d = x.d;
  const op: OpInput = { ...e.op };
  switch (op.kind) {
    case 'fallocate':
      if (d.chance(0.5)) op.mode = d.pick(['allocate', 'keep-size', 'punch-hole', 'zero-range', 'zero-range-keep-size', 'collapse-range', 'insert-range', 'unshare-range'] as const);
      else if (d.chance(0.5)) op.offset = nudge(d, op.offset, false);
      else op.length = nudge(d, op.length, true);
      break;
    case 'truncate': op.size = nudge(d, op.size, false); break;
    case 'discard': if (d.chance(0.5)) op.mode = d.pick(['discard', 'zeroout', 'secure'] as const); else op.length = nudge(d, op.length, true); break;
    case 'sync-file-range': op.flags = op.flags === 'write' ? 'wait-write' : 'write'; break;
    case 'msync': op.mode = d.pick(['sync', 'async', 'invalidate'] as const); break;
    case 'mmap-write':
    case 'mmap-read': if (d.chance(0.5)) op.offset = nudge(d, op.offset, false); else op.length = Math.min(nudge(d, op.length, true), 1 << 20); break;
    case 'fsync': op.dataOnly = !op.dataOnly; break;
    case 'corrupt': op.offset = nudge(d, op.offset, false); break;
    case 'loop-set-direct-io': op.on = !op.on; break;
    case 'loop-set-block-size': op.size = d.pick([512, 1024, 2048, 4096] as const); break;
    case 'dm-reload': op.as = d.pick(['same', 'linear', 'snapshot-origin'] as const); break;
    case 'dm-suspend': op.noflush = !op.noflush; break;
    case 'remount': op.mode = op.mode === 'cycle' ? 'ro-rw' : 'cycle'; break;
    case 'sleep': op.ms = d.int(0, 10); break;
    case 'snapshot-remove': m.program.threads[e.t]!.ops[e.i] = { kind: 'snapshot-merge', id: op.id, target: op.target }; return true;
    case 'snapshot-merge': m.program.threads[e.t]!.ops[e.i] = { kind: 'snapshot-remove', id: op.id, target: op.target }; return true;
    case 'md-fail': op.member = d.int(0, 3); break;
    default: return false;
  }
  m.program.threads[e.t]!.ops[e.i] = op;
  return true;
};

function insertAt(m: Mutable, d: Draw, t: number, op: OpInput, at?: number): void {
  const ops = m.program.threads[t]!.ops;
  ops.splice(at ?? d.int(0, ops.length), 0, op);
}

/** A fresh data op on any target, anywhere. */
const addOp: Mutator = (m, x) => {
  if (!x.targets.length) return false;
  const draft = genOpFor(x.d, x.d.pick(x.targets), opEnv(x.o, x.targets));
  insertAt(m, x.d, x.d.int(0, m.program.threads.length - 1), { ...draft, id: x.nextId() } as OpInput);
  return true;
};

const removeOp: Mutator = (m, x) => {
  const e = pickOp(m, x, (op) => op.kind !== 'barrier');
  if (!e || allOps(m).filter((y) => y.op.kind !== 'barrier').length < 2) return false;
  m.program.threads[e.t]!.ops.splice(e.i, 1);
  return true;
};

/** The same op again with a new id: right after itself, or in another thread (a race with itself). */
const duplicateOp: Mutator = (m, x) => {
  const e = pickOp(m, x, (op) => op.kind !== 'barrier' && !op.kind.startsWith('snapshot-') && !op.kind.startsWith('dm-'));
  if (!e) return false;
  const copy = { ...e.op, id: x.nextId() } as OpInput;
  const t = x.d.chance(0.5) ? e.t : x.d.int(0, m.program.threads.length - 1);
  // Same phase in the other thread: after as many barriers as the original has before it.
  const phase = m.program.threads[e.t]!.ops.slice(0, e.i).filter((o) => o.kind === 'barrier').length;
  const ops = m.program.threads[t]!.ops;
  let seen = 0;
  let at = ops.length;
  for (let i = 0; i < ops.length; i++) if (ops[i]!.kind === 'barrier' && ++seen > phase) { at = i; break; }
  insertAt(m, x.d, t, copy, t === e.t ? e.i + 1 : at);
  return true;
};

/** One more thread, passing the same barriers, with a few ops on targets the case already uses. */
const addThread: Mutator = (m, x) => {
  if (m.program.threads.length >= Math.min(8, x.o.maxThreads) || !x.targets.length) return false;
  const barriers = m.program.threads[0]!.ops.filter((o) => o.kind === 'barrier').map((o) => (o.kind === 'barrier' ? o.name : ''));
  const used = new Set(allOps(m).flatMap((e) => ('target' in e.op ? [e.op.target] : [])));
  const pool = x.targets.filter((t) => used.has(t.id));
  const targets = pool.length ? pool : x.targets;
  const env = opEnv(x.o, x.targets);
  const ops: OpInput[] = [];
  const phase = x.d.int(0, barriers.length);
  for (let p = 0; p <= barriers.length; p++) {
    if (p === phase) for (let i = x.d.int(1, 4); i > 0; i--) ops.push({ ...genOpFor(x.d, x.d.pick(targets), env), id: x.nextId() } as OpInput);
    if (p < barriers.length) ops.push({ kind: 'barrier', id: x.nextId(), name: barriers[p]! });
  }
  m.program.threads.push({ ops });
  return true;
};

/** Merge two phases (drop one barrier everywhere) or cut one (add a barrier to every thread). */
const barrierChange: Mutator = (m, x) => {
  const names = m.program.threads[0]!.ops.filter((o) => o.kind === 'barrier').map((o) => (o.kind === 'barrier' ? o.name : ''));
  if (names.length && x.d.chance(0.5)) {
    const name = x.d.pick(names);
    for (const th of m.program.threads) th.ops = th.ops.filter((o) => !(o.kind === 'barrier' && o.name === name));
    return true;
  }
  let name = `m${x.d.int(1, 9999)}`;
  while (names.includes(name)) name += 'x';
  for (const th of m.program.threads) {
    // After the same number of existing barriers in every thread, so the order stays global.
    const k = x.d.int(0, names.length);
    const idx = th.ops.reduce<number[]>((acc, o, i) => (o.kind === 'barrier' ? [...acc, i] : acc), []);
    const lo = k === 0 ? 0 : idx[k - 1]! + 1;
    const hi = k === names.length ? th.ops.length : idx[k]!;
    th.ops.splice(x.d.int(lo, hi), 0, { kind: 'barrier', id: x.nextId(), name });
  }
  return true;
};

/** Draw a layer's parameters again with its kind's generator, on the same lower layers. */
const swapLayerParam: Mutator = (m, x) => {
  const candidates = m.stack.layers.filter((l) => LAYER_KINDS[l.kind].arbitrary && x.o.kinds.has(l.kind));
  if (!candidates.length) return false;
  const old = x.d.pick(candidates);
  const rest = m.stack.layers.filter((l) => l.id !== old.id);
  const { info } = analyzeStack({ layers: rest });
  const lowers = new Set(refsOf(old));
  const ctx: LayerGenContext = {
    id: old.id,
    stack: info,
    blocks: rest.filter((l) => lowers.has(l.id) && LAYER_KINDS[l.kind].role === 'block'),
    filesystems: rest.filter((l): l is Extract<Layer, { kind: 'fs' }> => l.kind === 'fs' && lowers.has(l.id)),
    files: rest.filter((l): l is Extract<Layer, { kind: 'file' }> => l.kind === 'file' && lowers.has(l.id)),
    kinds: x.o.kinds,
    fsTypes: x.o.fsTypes,
    diskSize: x.o.diskSize,
  };
  const arb = LAYER_KINDS[old.kind].arbitrary!(ctx);
  if (!arb) return false;
  const drawn = x.d.from(arb).find((l) => l.id === old.id && l.kind === old.kind);
  if (!drawn) return false;
  const fresh = { ...drawn, ...pickRefs(old) } as Layer;
  if (canonicalJson(fresh) === canonicalJson(old)) return false;
  m.stack.layers = m.stack.layers.map((l) => (l.id === old.id ? fresh : l));
  return true;
};

function refsOf(l: Layer): string[] {
  const r = pickRefs(l);
  return Object.values(r).flatMap((v) => (Array.isArray(v) ? v : [v]));
}

/** The fields that tie a layer to the ones below it (and a file's name), kept when its parameters change. */
function pickRefs(l: Layer): Partial<Record<'on' | 'members' | 'origin' | 'cow' | 'name', string | string[]>> {
  const out: Partial<Record<'on' | 'members' | 'origin' | 'cow' | 'name', string | string[]>> = {};
  if ('on' in l) out.on = l.on;
  if ('members' in l) out.members = l.members;
  if (l.kind === 'dm-snapshot') {
    out.origin = l.origin;
    out.cow = l.cow;
  }
  if (l.kind === 'file') out.name = l.name;
  return out;
}

/** A run of ops from a donor case, retargeted to layers of the same role here. */
const splice: Mutator = (m, x) => {
  if (!x.donors.length || !x.targets.length) return false;
  const donor = x.d.pick(x.donors);
  const th = x.d.pick(donor.program.threads);
  const ops = th.ops.filter((o) => o.kind !== 'barrier');
  if (!ops.length) return false;
  const start = x.d.int(0, ops.length - 1);
  const run = ops.slice(start, start + x.d.int(1, 6));
  const { info: dInfo } = analyzeStack(donor.stack);
  const out: OpInput[] = [];
  for (const op of run) {
    const mapped = retarget(op, dInfo, x);
    if (mapped) out.push({ ...mapped, id: x.nextId() } as OpInput);
  }
  if (!out.length) return false;
  const t = x.d.int(0, m.program.threads.length - 1);
  const at = x.d.int(0, m.program.threads[t]!.ops.length);
  m.program.threads[t]!.ops.splice(at, 0, ...out);
  return true;
};

function retarget(op: OpInput, dInfo: StackInfo, x: Ctx): OpDraft | undefined {
  const { id: _id, ...draft } = op as OpInput & { id: number };
  if (!('target' in draft)) return draft as OpDraft;
  const was = dInfo.layer(draft.target);
  if (!was) return undefined;
  let pool: Array<{ id: string }>;
  if (was.kind === 'file') pool = x.targets.filter((t) => t.kind === 'file');
  else if (LAYER_KINDS[was.kind].role === 'block' && dInfo.usersOf(was.id).length === 0) pool = x.targets.filter((t) => t.kind === 'block');
  else pool = x.info.layers.filter((l) => l.kind === was.kind);
  if (!pool.length) return undefined;
  const out = { ...draft, target: x.d.pick(pool).id } as OpDraft;
  if ((out.kind === 'read' || out.kind === 'write') && out.buffer?.placement === 'mmap') {
    const files = x.targets.filter((t) => t.kind === 'file');
    out.buffer = files.length ? { ...out.buffer, file: x.d.pick(files).id } : { placement: 'heap', align: 0 };
  }
  return out;
}

const reseed: Mutator = (m, x) => {
  m.seed = x.d.int(0, 0xffffffff);
  return true;
};

const MUTATORS: ReadonlyArray<readonly [number, string, Mutator]> = [
  [5, 'tweak-data', tweakData],
  [3, 'tweak-op', tweakOther],
  [3, 'add-op', addOp],
  [2, 'remove-op', removeOp],
  [2, 'duplicate-op', duplicateOp],
  [1.5, 'add-thread', addThread],
  [1, 'barrier', barrierChange],
  [2, 'swap-layer-param', swapLayerParam],
  [2, 'splice', splice],
  [0.3, 'reseed', reseed],
];

/** A valid case that differs from `c` by a few mutations (the same seed gives the same mutant). */
export function mutateCase(c: Case, seed: number, opts: MutateOptions = {}): Case {
  const o = normalizeOptions(opts);
  const d = drawFor(seed);
  const parent = caseHash(c);
  const before = canonicalJson(caseEssence(c));
  // Keep the model's cost where it was: no racing phase with more serial orders than the cap (or the parent's).
  const orderCap = Math.max(MAX_ORDERS, racingOrders(c.program.threads));
  const meta = (notes: string): Case['meta'] => ({ origin: 'mutated', parent, notes });
  for (let attempt = 0; attempt < 16; attempt++) {
    const m = structuredClone({ seed: c.seed, stack: c.stack, program: c.program }) as Mutable;
    const { info } = analyzeStack(m.stack as Case['stack']);
    let maxId = allOps(m).reduce((n, e) => Math.max(n, e.op.id), 0);
    const x: Ctx = { d, o, info, targets: ioTargets(info), donors: opts.donors ?? [], nextId: () => ++maxId };
    const applied: string[] = [];
    for (let k = d.int(1, 3); k > 0; k--) {
      const [, name, fn] = d.weighted(MUTATORS.map((e) => [e[0], e] as const));
      if (fn(m, x)) applied.push(name);
    }
    if (!applied.length) continue;
    const input: CaseInput = { format: c.format, name: c.name, ...(c.description ? { description: c.description } : {}), seed: m.seed, stack: m.stack, program: m.program, meta: meta(`mutations: ${applied.join(', ')}`) };
    const r = repairCase(input);
    if (!r) continue;
    if (canonicalJson(caseEssence(r.value)) === before) continue;
    if (r.value.stack.layers.some((l) => !o.kinds.has(l.kind))) continue;
    if (racingOrders(r.value.program.threads) > orderCap) continue;
    return r.value;
  }
  // Nothing else held: the same program over other data is still a different case.
  const fallback: CaseInput = { ...c, seed: (c.seed + 1 + d.int(0, 0xfffffffe)) >>> 0, meta: meta('mutations: reseed') };
  const r = repairCase(fallback);
  if (!r) throw new Error(`mutateCase: the input case '${c.name}' does not validate`);
  return r.value;
}
