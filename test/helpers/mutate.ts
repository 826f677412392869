/**
 * Mutation operators for observations: each takes the observation a correct
 * kernel could report (the model's prediction) and changes it the way a real
 * kernel bug would, producing a mutant together with the divergence the
 * oracle must report for it.
 *
 * Mutants are only made where they are illegal BY CONSTRUCTION: a fixture
 * states, from the program and documented Linux semantics alone, which reads
 * return exactly one writer's bytes per byte, which ops cannot fail, which
 * must fail, and which objects end with exact content. The operators never
 * ask the model what it allows (a model that allows everything would then
 * yield no mutants, and the suite would prove nothing).
 */
import { patternByte } from '../../model/index.ts';
import type {
  CaseInput,
  DataClass,
  DivergenceClass,
  FinalContent,
  Observation,
  ObservedExtent,
  OpResult,
} from '../../model/index.ts';

export type Src = ObservedExtent['src'];
type Op = CaseInput['program']['threads'][number]['ops'][number];
type Layer = CaseInput['stack']['layers'][number];

export const OPERATORS = [
  'short-read',
  'other-op',
  'zeroes',
  'stale',
  'missing-error',
  'extra-error',
  'wrong-size',
  'shifted',
  'garbage',
  'geometry',
] as const;
export type Operator = (typeof OPERATORS)[number];

/** A success a must-fail op is mutated into, and how the oracle must call it. */
export interface MustFail {
  op: number;
  /** Why Linux must fail it (documentation, not the model). */
  why: string;
  /** The divergence a success here is. */
  expect: { class: DivergenceClass; dataClass?: DataClass };
  /** For reads: what the lying kernel returns instead of the error. */
  data?: Src;
}

/** Bytes of an object that can never be read back (bad blocks, never-written AEAD sectors). */
export interface Unreadable {
  obj: string;
  start: number;
  end: number;
  why: string;
}

export interface Fixture {
  name: string;
  input: CaseInput;
  /**
   * Reads that return exactly one source per byte (one writer, or zeroes):
   * no racing writer, no fault or damage near, not RWF_NOWAIT, the whole
   * count below EOF or up to it. Every data operator applies to them.
   */
  exactReads: number[];
  /**
   * Reads whose bytes are each one of a few known sources (racing writers,
   * zeroes) but never 'any' bytes: garbage, shifted and other-op data are
   * illegal there, zeroes and stale data may not be.
   */
  settledReads?: number[];
  /** Objects whose final content is exact in the same sense (files: their final size too). */
  exactFinal: string[];
  /** Objects whose final content is settled (see settledReads). */
  settledFinal?: string[];
  /** Ops no fault, race or kernel choice can make fail: an error there is a kernel bug. */
  mustSucceed: number[];
  mustFail?: MustFail[];
  unreadable?: Unreadable[];
}

export interface Mutant {
  operator: Operator;
  fixture: string;
  description: string;
  observation: Observation;
  expect: {
    class: DivergenceClass;
    dataClass?: DataClass;
    /** The op the divergence must name (op mutants), or the object (final, size and geometry mutants). */
    op?: number;
    object?: string;
    /** Absolute offset of the first bad byte. */
    offset?: number;
    /** Ops the divergence must list as the expected writers at `offset`. */
    expectedWriters?: number[];
    observedWriter?: number;
    /** A phrase the divergence's `observed` must contain. */
    observed?: string;
  };
}

// ---- the case, as the operators see it --------------------------------------------------------

interface Placed {
  op: Op;
  thread: number;
  index: number;
  phase: number;
}

function places(input: CaseInput): Map<number, Placed> {
  const out = new Map<number, Placed>();
  input.program.threads.forEach((t, thread) => {
    let phase = 0;
    t.ops.forEach((op, index) => {
      out.set(op.id, { op, thread, index, phase });
      if (op.kind === 'barrier') phase++;
    });
  });
  return out;
}

/** a surely ran before b: an earlier phase, or earlier in the same thread. */
function before(a: Placed, b: Placed): boolean {
  return a.phase < b.phase || (a.thread === b.thread && a.index < b.index);
}

/** Ops that put their own pattern at [offset, offset+length) of their target (heap buffers only). */
function patternWriter(op: Op): { target: string; start: number; end: number } | undefined {
  if (op.kind === 'mmap-write') return { target: op.target, start: op.offset, end: op.offset + op.length };
  if (op.kind === 'write' && (op.buffer === undefined || op.buffer.placement === 'heap'))
    return { target: op.target, start: op.offset, end: op.offset + op.length };
  return undefined;
}

/** Every op that may have put data (its own or moved) anywhere in [start, end) of any object. */
function mayHaveWritten(op: Op, start: number, end: number): boolean {
  if (!('target' in op)) return false;
  switch (op.kind) {
    case 'mmap-write':
      return op.offset < end && start < op.offset + op.length;
    case 'write':
      return op.buffer === undefined || op.buffer.placement === 'heap'
        ? op.offset < end && start < op.offset + op.length
        : true; // data copied from another buffer: be conservative
    case 'read':
      return op.buffer?.placement === 'mmap';
    case 'fallocate':
      return op.mode === 'collapse-range' || op.mode === 'insert-range';
    case 'snapshot-merge':
      return true;
    default:
      return false;
  }
}

// ---- runs ---------------------------------------------------------------------------------

/** Split runs at `s` and `e` and map the source of everything in [s, e). Offsets in the runs' own frame. */
export function mapRange(runs: readonly ObservedExtent[], s: number, e: number, f: (src: Src) => Src): ObservedExtent[] {
  const out: ObservedExtent[] = [];
  for (const r of runs) {
    const rs = r.offset;
    const re = r.offset + r.length;
    const cuts = [rs, Math.min(Math.max(s, rs), re), Math.min(Math.max(e, rs), re), re];
    for (let i = 0; i < 3; i++) {
      const a = cuts[i]!;
      const b = cuts[i + 1]!;
      if (b <= a) continue;
      out.push({ offset: a, length: b - a, src: i === 1 ? f(r.src) : r.src });
    }
  }
  return out;
}

function isOp(src: Src): src is { op: number; delta: number } {
  return typeof src === 'object';
}

function clone(obs: Observation): Observation {
  return structuredClone(obs);
}

function resultIndex(obs: Observation, id: number): number {
  const i = obs.results.findIndex((r) => r.op === id);
  if (i < 0) throw new Error(`mutate: no result for op ${id}`);
  return i;
}

function withResult(obs: Observation, r: OpResult): Observation {
  const o = clone(obs);
  o.results[resultIndex(o, r.op)] = r;
  return o;
}

function withFinal(obs: Observation, obj: string, f: FinalContent): Observation {
  const o = clone(obs);
  o.final[obj] = f;
  return o;
}

/** A data site: a read's returned runs (offsets relative to base) or an object's final runs (absolute, base 0). */
interface Site {
  kind: 'read' | 'final';
  /** Read op id, or the object for final content. */
  op?: number;
  obj: string;
  /** Absolute offset of run offset 0. */
  base: number;
  runs: ObservedExtent[];
  /** The phase position that reads it (final: after everything). */
  reader?: Placed;
  exact: boolean;
}

function sites(fx: Fixture, obs: Observation, pl: Map<number, Placed>): Site[] {
  const out: Site[] = [];
  const reads = [...fx.exactReads.map((id) => [id, true] as const), ...(fx.settledReads ?? []).map((id) => [id, false] as const)];
  for (const [id, exact] of reads) {
    const p = pl.get(id);
    if (!p || p.op.kind !== 'read') throw new Error(`fixture ${fx.name}: op ${id} is not a read`);
    const r = obs.results[resultIndex(obs, id)]!;
    if (r.ret <= 0 || !r.data) throw new Error(`fixture ${fx.name}: read ${id} is listed as returning data, but the prediction has none`);
    out.push({ kind: 'read', op: id, obj: p.op.target, base: p.op.offset, runs: r.data, reader: p, exact });
  }
  const finals = [...fx.exactFinal.map((o) => [o, true] as const), ...(fx.settledFinal ?? []).map((o) => [o, false] as const)];
  for (const [obj, exact] of finals) {
    const f = obs.final[obj];
    if (!f) throw new Error(`fixture ${fx.name}: no final content for '${obj}'`);
    out.push({ kind: 'final', obj, base: 0, runs: f.extents, exact });
  }
  return out;
}

function siteObservation(obs: Observation, site: Site, runs: ObservedExtent[]): Observation {
  if (site.kind === 'read') {
    const r = obs.results[resultIndex(obs, site.op!)]!;
    return withResult(obs, { ...r, data: runs });
  }
  return withFinal(obs, site.obj, { ...obs.final[site.obj]!, extents: runs });
}

function siteExpect(site: Site, dataClass: DataClass): Pick<Mutant['expect'], 'class' | 'dataClass' | 'op' | 'object'> {
  return site.kind === 'read'
    ? { class: 'wrong-data', dataClass, op: site.op }
    : { class: 'final-content', dataClass, object: site.obj };
}

function siteName(site: Site): string {
  return site.kind === 'read' ? `read ${site.op}` : `final content of '${site.obj}'`;
}

/** The first run with an op's pattern, skipping ranges a fixture marks unreadable. */
function firstOpRun(site: Site): ObservedExtent | undefined {
  return site.runs.find((r) => isOp(r.src));
}

/**
 * Absolute offset of the first byte a mutant gets wrong: where the mutated source's pattern
 * byte differs from the right one (two ops' patterns agree on a byte 1 time in 255, and the
 * oracle judges decoded runs by byte value). Unknown (undefined) on a site that is only
 * settled: there the right byte may be one of several writers'.
 */
function firstBad(fx: Fixture, site: Site, right: Src, wrong: Src, s: number, e: number): number | undefined {
  if (!isOp(wrong) || !isOp(right)) return s;
  if (!site.exact) return undefined;
  for (let a = s; a < e; a++) if (patternByte(fx.input.seed, wrong.op, a + wrong.delta) !== patternByte(fx.input.seed, right.op, a + right.delta)) return a;
  throw new Error(`mutate: op ${wrong.op}'s pattern equals op ${right.op}'s over [${s}, ${e}); not a mutant`);
}

// ---- the operators ------------------------------------------------------------------------

export function mutants(fx: Fixture, obs: Observation): Mutant[] {
  const pl = places(fx.input);
  const all: Mutant[] = [];
  const ss = sites(fx, obs, pl);
  const add = (m: Omit<Mutant, 'fixture'>) => all.push({ ...m, fixture: fx.name });
  const allOps = [...pl.values()];

  // 1. short read below EOF: the S2 bug (4096 of 8192 bytes, the rest of the buffer unfilled).
  for (const site of ss) {
    if (site.kind !== 'read' || !site.exact) continue;
    const r = obs.results[resultIndex(obs, site.op!)]!;
    const k = r.ret;
    const short = k > 512 ? Math.floor(k / 2 / 512) * 512 : k - 1;
    add({
      operator: 'short-read',
      description: `read ${site.op} returns ${short} of ${k} bytes`,
      observation: withResult(obs, { ...r, ret: short, data: r.data!.filter((x) => x.offset < short).map((x) => ({ ...x, length: Math.min(x.length, short - x.offset) })) }),
      expect: { class: 'short-read', op: site.op, offset: site.base + short, observed: `success (${short} bytes)` },
    });
  }

  // 2. bytes from an op that never wrote there (a misdirected IO): a writer elsewhere, else a non-writer.
  for (const site of ss) {
    const run = firstOpRun(site) ?? site.runs.find((x) => x.src === 'zero');
    if (!run) continue;
    const abs = [site.base + run.offset, site.base + run.offset + run.length] as const;
    const candidates = allOps.filter((p) => p.op.kind !== 'barrier' && !mayHaveWritten(p.op, abs[0], abs[1]));
    const y = candidates.find((p) => patternWriter(p.op)) ?? candidates.find((p) => p.op.kind === 'read') ?? candidates[0];
    if (!y) continue;
    // Where the site is only settled, a zero run may stand for a set that also names racing writers.
    const expectedWriters = isOp(run.src) ? [run.src.op] : site.exact ? [] : undefined;
    add({
      operator: 'other-op',
      description: `${siteName(site)}: op ${y.op.id} (${y.op.kind}, never wrote [${abs[0]}, ${abs[1]})) instead of ${JSON.stringify(run.src)}`,
      observation: siteObservation(obs, site, mapRange(site.runs, run.offset, run.offset + run.length, () => ({ op: y.op.id, delta: 0 }))),
      expect: { ...siteExpect(site, 'other-op'), offset: firstBad(fx, site, run.src, { op: y.op.id, delta: 0 }, abs[0], abs[1]), expectedWriters, observedWriter: y.op.id, observed: `op ${y.op.id}'s data` },
    });
  }

  // 3. zeroes where an op's data belongs (a lost write, an unfilled buffer).
  for (const site of ss) {
    if (!site.exact) continue;
    const run = firstOpRun(site);
    if (!run || !isOp(run.src)) continue;
    add({
      operator: 'zeroes',
      description: `${siteName(site)}: zeroes instead of op ${run.src.op}`,
      observation: siteObservation(obs, site, mapRange(site.runs, run.offset, run.offset + run.length, () => 'zero')),
      expect: { ...siteExpect(site, 'zeroes'), offset: site.base + run.offset, expectedWriters: [run.src.op], observed: 'zeroes' },
    });
  }

  // 4. stale data: the previous writer of bytes an op overwrote (a lost overwrite, a stale cache, split brain).
  for (const site of ss) {
    if (!site.exact) continue;
    for (const run of site.runs) {
      if (!isOp(run.src) || run.src.delta !== 0) continue;
      const newer = pl.get(run.src.op);
      if (!newer) continue;
      const s = site.base + run.offset;
      const e = s + run.length;
      const older = allOps.filter((p) => {
        const w = patternWriter(p.op);
        return w && w.target === site.obj && w.start < e && s < w.end && p.op.id !== newer.op.id && before(p, newer) && (!site.reader || before(p, site.reader));
      });
      const a = older[older.length - 1];
      if (!a) continue;
      const w = patternWriter(a.op)!;
      const ms = Math.max(s, w.start);
      const me = Math.min(e, w.end);
      add({
        operator: 'stale',
        description: `${siteName(site)}: op ${a.op.id}'s older data at [${ms}, ${me}) instead of op ${newer.op.id}'s`,
        observation: siteObservation(obs, site, mapRange(site.runs, ms - site.base, me - site.base, () => ({ op: a.op.id, delta: 0 }))),
        expect: { ...siteExpect(site, 'stale'), offset: firstBad(fx, site, run.src, { op: a.op.id, delta: 0 }, ms, me), expectedWriters: [newer.op.id], observedWriter: a.op.id, observed: `op ${a.op.id}'s data` },
      });
      break;
    }
  }

  // 5. a missing error: success (and data) where Linux must fail.
  for (const mf of fx.mustFail ?? []) {
    const p = pl.get(mf.op);
    if (!p) throw new Error(`fixture ${fx.name}: no op ${mf.op}`);
    const op = p.op;
    const r = obs.results[resultIndex(obs, mf.op)]!;
    let mutated: OpResult;
    if (op.kind === 'read' || op.kind === 'mmap-read') {
      mutated = { op: mf.op, ret: op.length, data: [{ offset: 0, length: op.length, src: mf.data ?? 'zero' }] };
    } else mutated = { op: mf.op, ret: 0 };
    add({
      operator: 'missing-error',
      description: `op ${mf.op} (${op.kind}) succeeds, though ${mf.why} (was ${r.errno ?? r.signal ?? r.ret})`,
      observation: withResult(obs, mutated),
      expect: {
        ...mf.expect,
        op: mf.op,
        ...(mf.expect.dataClass === 'data-instead-of-error' && 'offset' in op ? { offset: op.offset, expectedWriters: [] } : {}),
        observed: mf.expect.class === 'wrong-data' ? 'zeroes' : 'success',
      },
    });
  }
  for (const u of fx.unreadable ?? []) {
    const f = obs.final[u.obj];
    if (!f) throw new Error(`fixture ${fx.name}: no final content for '${u.obj}'`);
    add({
      operator: 'missing-error',
      description: `final content of '${u.obj}' reads zeroes at [${u.start}, ${u.end}), though ${u.why}`,
      observation: withFinal(obs, u.obj, { ...f, extents: mapRange(f.extents, u.start, u.end, () => 'zero') }),
      expect: { class: 'final-content', dataClass: 'data-instead-of-error', object: u.obj, offset: u.start, expectedWriters: [], observed: 'zeroes' },
    });
  }

  // 6. an extra error: EIO from an op nothing can make fail (S1's loop, S3's integrity stack).
  for (const id of fx.mustSucceed) {
    const p = pl.get(id);
    if (!p) throw new Error(`fixture ${fx.name}: no op ${id}`);
    add({
      operator: 'extra-error',
      description: `op ${id} (${p.op.kind}) fails with EIO`,
      observation: withResult(obs, { op: id, ret: -1, errno: 'EIO' }),
      expect: { class: 'unexpected-error', op: id, observed: 'EIO' },
    });
  }

  // 7. a wrong final size of a file (lost extension, a truncate that did not stick).
  for (const obj of fx.exactFinal) {
    const layer = fx.input.stack.layers.find((l) => l.id === obj);
    if (layer?.kind !== 'file') continue;
    const f = obs.final[obj]!;
    for (const size of [f.size + 4096, f.size - 1].filter((s) => s >= 0)) {
      add({
        operator: 'wrong-size',
        description: `'${obj}' ends ${size} bytes long instead of ${f.size}`,
        observation: withFinal(obs, obj, { ...f, size }),
        expect: { class: 'size-mismatch', object: obj, observed: String(size) },
      });
    }
  }

  // 8. data shifted by a sector (an off-by-one-sector mapping in a stacked or split bio).
  for (const site of ss) {
    const run = firstOpRun(site);
    if (!run || !isOp(run.src)) continue;
    const src = run.src;
    for (const d of [512, -512]) {
      add({
        operator: 'shifted',
        description: `${siteName(site)}: op ${src.op}'s data from ${d > 0 ? '+' : ''}${d} bytes away`,
        observation: siteObservation(obs, site, mapRange(site.runs, run.offset, run.offset + run.length, () => ({ op: src.op, delta: src.delta + d }))),
        expect: { ...siteExpect(site, 'shifted'), offset: firstBad(fx, site, src, { op: src.op, delta: src.delta + d }, site.base + run.offset, site.base + run.offset + run.length), expectedWriters: [src.op], observedWriter: src.op },
      });
    }
  }

  // 9. garbage: bytes no op wrote (corruption, an uninitialised page).
  for (const site of ss) {
    const run = firstOpRun(site) ?? site.runs.find((x) => x.src === 'zero');
    if (!run) continue;
    add({
      operator: 'garbage',
      description: `${siteName(site)}: bytes no op wrote instead of ${JSON.stringify(run.src)}`,
      observation: siteObservation(obs, site, mapRange(site.runs, run.offset, run.offset + run.length, () => 'unknown')),
      expect: { ...siteExpect(site, 'garbage'), offset: site.base + run.offset, expectedWriters: isOp(run.src) ? [run.src.op] : site.exact ? [] : undefined, observed: 'bytes no op wrote' },
    });
  }

  // 10. a wrong geometry: bigger than all the storage in the case; a logical block size the disk does not have.
  const storage = fx.input.stack.layers.reduce((n, l) => n + ('size' in l && typeof l.size === 'number' ? l.size : 0), 0);
  for (const [id, g] of Object.entries(obs.geometry)) {
    const layer = fx.input.stack.layers.find((l) => l.id === id);
    if (!layer) continue;
    add({
      operator: 'geometry',
      description: `'${id}' (${layer.kind}) reports ${storage + 1048576} bytes, more than all the storage in the case`,
      observation: { ...clone(obs), geometry: { ...obs.geometry, [id]: { ...g, size: storage + 1048576 } } },
      expect: { class: 'geometry', object: id },
    });
    const declared = declaredLbs(layer);
    if (declared !== undefined) {
      const wrong = declared === 4096 ? 512 : 4096;
      add({
        operator: 'geometry',
        description: `'${id}' (${layer.kind}) reports logical block size ${wrong}, the case set ${declared}`,
        observation: { ...clone(obs), geometry: { ...obs.geometry, [id]: { ...g, logicalBlockSize: wrong, physicalBlockSize: Math.max(wrong, g.physicalBlockSize) } } },
        expect: { class: 'geometry', object: id },
      });
    }
  }
  return all;
}

/** The logical block size a layer's own fields fix (disks; loop devices with one set and never changed). */
function declaredLbs(l: Layer): number | undefined {
  if (l.kind === 'disk' || l.kind === 'scsi-debug') return l.logicalBlockSize ?? 512;
  return undefined;
}

// ---- judging mutants ----------------------------------------------------------------------

export interface Outcome {
  mutant: Mutant;
  killed: boolean;
  /** Why a mutant counts as surviving (wrong class, no divergence, ...). */
  why?: string;
}

export interface JudgedDivergence {
  class: DivergenceClass;
  dataClass?: DataClass;
  op?: number;
  object?: string;
  offset?: number;
  expected: string;
  observed: string;
  expectedWriters?: number[];
  observedWriter?: number;
  message: string;
}

/** Killed: the first divergence is the expected one, naming the right op or object, class and data class. */
export function verdictFor(m: Mutant, divergences: readonly JudgedDivergence[]): Outcome {
  const d = divergences[0];
  if (!d) return { mutant: m, killed: false, why: 'judged a pass' };
  const e = m.expect;
  const problems: string[] = [];
  if (d.class !== e.class) problems.push(`class ${d.class}, not ${e.class}`);
  if (e.dataClass !== undefined && d.dataClass !== e.dataClass) problems.push(`data class ${d.dataClass}, not ${e.dataClass}`);
  if (e.op !== undefined && d.op !== e.op) problems.push(`names op ${d.op}, not ${e.op}`);
  if (e.object !== undefined && d.object !== e.object) problems.push(`names '${d.object}', not '${e.object}'`);
  return problems.length ? { mutant: m, killed: false, why: `${problems.join('; ')}: ${d.message}` } : { mutant: m, killed: true };
}

export interface Score {
  killed: number;
  total: number;
  byOperator: Record<Operator, { killed: number; total: number }>;
}

export function score(outcomes: readonly Outcome[]): Score {
  const byOperator = Object.fromEntries(OPERATORS.map((o) => [o, { killed: 0, total: 0 }])) as Score['byOperator'];
  for (const o of outcomes) {
    const s = byOperator[o.mutant.operator];
    s.total++;
    if (o.killed) s.killed++;
  }
  return { killed: outcomes.filter((o) => o.killed).length, total: outcomes.length, byOperator };
}

export function formatScore(title: string, s: Score): string {
  const pct = (k: number, t: number) => (t ? `${((100 * k) / t).toFixed(1)}%` : '-');
  const lines = [`${title}: ${s.killed}/${s.total} killed (${pct(s.killed, s.total)})`];
  for (const op of OPERATORS) {
    const x = s.byOperator[op];
    lines.push(`  ${op.padEnd(14)} ${String(x.killed).padStart(4)}/${String(x.total).padEnd(4)} ${pct(x.killed, x.total)}`);
  }
  return lines.join('\n');
}
