/**
 * Minimization of a case that shows a finding: the staged pipeline
 *
 *   confirm   run the original `confirmRuns` times: does it show the finding, how often?
 *   extract   try the ops the divergence names (the op, the writers the model
 *             expected, the writer seen) alone, in one thread: often all it takes
 *   ops       slice() over the ops (barriers across threads and dm suspend/resume
 *             pairs move as one unit)
 *   threads   one thread doing everything phase by phase; without each thread
 *   stack     take layers out (their users and ops move to what they sat on),
 *             a raw device instead of a file on a filesystem, buffered loop,
 *             no AEAD on dm-crypt, default block sizes and options, no unused layers
 *   simplify  simpler submission: io_uring -> pvec -> psync, nowait off, one
 *             iovec, a heap buffer at offset 0, no dsync, then buffered IO
 *   numbers   shrink offsets (all ops on an object shifted together, then
 *             each), lengths, sizes, disk and file sizes towards small aligned
 *             values, with fast-check's integer shrinker
 *   (ops, threads and stack again if the later stages changed anything)
 *   measure   run the result `confirmRuns` times: its reproduction rate
 *
 * Each candidate is validated first (validateCase; an invalid one is
 * rejected without running) and then run through an Executor. The predicate
 * is flakiness-aware: a candidate shows the finding when `need` of up to
 * `runs` runs show a divergence of the same signature (showsSignature, 'core'
 * by default: same class, data class, errno and op kind, or the same kernel
 * title; the path and stack may become simpler). runs/need come from the
 * rate measured in `confirm` unless given. Every candidate of a round is
 * independent, so up to `concurrency` of them run at once (the farm passes
 * its worker count). A budget in executions and wall time ends minimization
 * early with the best case so far; `onProgress` reports every improvement.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { type Case, type Op, type RunOutcome, validateCase } from '../../model/index.ts';
import {
  allOps, bypassLayer, clone, countOps, dropThread, dropUnusedLayers, editLayer, editOp, keepOps, lowerOf, numericFields, opGroups, serialize,
} from './case-edit.ts';
import type { Executor } from './executor.ts';
import { type Finding, type MatchMode, type Signature, isFinding, matchingSignature, primaryDivergence, showsSignature, signatureOf } from './signature.ts';
import { firstHolding, slice } from './slice.ts';

export interface ReproPolicy {
  /** Runs per candidate at most. */
  runs: number;
  /** Runs that must show the finding. */
  need: number;
}

export interface MinimizeOptions {
  /** The finding to keep; default: the signature of the first run of the original that shows one. */
  signature?: Signature;
  /** How much of the signature must stay (default 'core'). */
  match?: MatchMode;
  /** Runs of the original (and of the result) to measure the rate. @defaultValue 5 */
  confirmRuns?: number;
  /** k of n per candidate; default from the measured rate (1 of 1 when it always shows). */
  policy?: ReproPolicy;
  /** Upper bound on runs per candidate when derived from the rate. @defaultValue 10 */
  maxRunsPerCandidate?: number;
  /** Candidates run at once. @defaultValue 1 */
  concurrency?: number;
  /** Budget: executions (runs on the executor). @defaultValue 2000 */
  maxExecutions?: number;
  /** Budget: wall time. @defaultValue 30 minutes */
  maxMs?: number;
  /** Stages to skip (by name). */
  skip?: ReadonlyArray<StageName>;
  onProgress?: (p: MinimizeProgress) => void;
  signal?: AbortSignal;
}

export type StageName = 'confirm' | 'extract' | 'ops' | 'threads' | 'stack' | 'simplify' | 'numbers' | 'measure';

export interface CaseSize {
  ops: number;
  threads: number;
  layers: number;
}

export interface MinimizeProgress {
  stage: StageName;
  executions: number;
  elapsedMs: number;
  size: CaseSize;
  message: string;
}

export interface StageStat {
  stage: StageName;
  executions: number;
  ms: number;
  before: CaseSize;
  after: CaseSize;
}

export interface Rate {
  runs: number;
  reproduced: number;
}

export interface MinimizeResult {
  original: Case;
  minimized: Case;
  /** The signature that was kept (of the original run). */
  signature: Signature;
  /** The signature the minimized case shows (the path and stack may be simpler than the original's). */
  minimizedSignature?: Signature;
  /** The original showed the finding at least once in `confirm`; false: nothing was minimized. */
  reproduced: boolean;
  policy: ReproPolicy;
  originalRate: Rate;
  finalRate: Rate;
  executions: number;
  /** Candidates rejected by validation (not run). */
  rejected: number;
  /** Runs that ended in an infrastructure error, unsupported, or a thrown executor error. */
  infraErrors: number;
  elapsedMs: number;
  stages: StageStat[];
  budgetExhausted: boolean;
  /** A run of the minimized case showing the finding (for the report). */
  outcome?: Finding;
  /** A run of the original showing it. */
  originalOutcome?: Finding;
}

export function caseSize(c: Case): CaseSize {
  return { ops: countOps(c), threads: c.program.threads.length, layers: c.stack.layers.length };
}

function sizeText(s: CaseSize): string {
  return `${s.ops} ops, ${s.threads} thread${s.threads === 1 ? '' : 's'}, ${s.layers} layer${s.layers === 1 ? '' : 's'}`;
}

/** Content hash of a case (the parent of a minimized case). */
export function caseHash(c: Case): string {
  return createHash('sha256').update(JSON.stringify(c)).digest('hex').slice(0, 16);
}

class BudgetExhausted extends Error {}

/** The flakiness policy for a measured rate: 1 of 1 when it always shows, else enough runs to see it with 95% odds. */
export function policyForRate(rate: Rate, maxRuns = 10): ReproPolicy {
  if (rate.reproduced === 0) return { runs: maxRuns, need: 1 };
  const p = rate.reproduced / rate.runs;
  if (p >= 1) return { runs: 1, need: 1 };
  const n = Math.ceil(Math.log(0.05) / Math.log(1 - p));
  return { runs: Math.max(2, Math.min(maxRuns, n)), need: 1 };
}

export async function minimize(executor: Executor, original: Case, opts: MinimizeOptions = {}): Promise<MinimizeResult> {
  return new Minimizer(executor, original, opts).run();
}

class Minimizer {
  private executions = 0;
  private rejected = 0;
  private infraErrors = 0;
  private readonly started = performance.now();
  private readonly stages: StageStat[] = [];
  private readonly cache = new Map<string, Promise<boolean>>();
  private budgetExhausted = false;
  private signature: Signature | undefined;
  private policy: ReproPolicy = { runs: 1, need: 1 };
  private best: Case;
  private bestOutcome: Finding | undefined;
  private originalOutcome: Finding | undefined;
  private stage: StageName = 'confirm';
  private readonly maxExecutions: number;
  private readonly maxMs: number;
  private readonly concurrency: number;
  private readonly match: MatchMode;

  constructor(
    private readonly executor: Executor,
    private readonly original: Case,
    private readonly opts: MinimizeOptions,
  ) {
    this.best = clone(original);
    this.maxExecutions = opts.maxExecutions ?? 2000;
    this.maxMs = opts.maxMs ?? 30 * 60_000;
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.match = opts.match ?? 'core';
    this.signature = opts.signature;
  }

  private elapsed(): number {
    return performance.now() - this.started;
  }

  private outOfBudget(): boolean {
    if (this.opts.signal?.aborted) return true;
    if (this.executions >= this.maxExecutions || this.elapsed() >= this.maxMs) {
      this.budgetExhausted = true;
      return true;
    }
    return false;
  }

  private progress(message: string): void {
    this.opts.onProgress?.({ stage: this.stage, executions: this.executions, elapsedMs: Math.round(this.elapsed()), size: caseSize(this.best), message });
  }

  private async runOnce(c: Case): Promise<RunOutcome | undefined> {
    if (this.outOfBudget()) throw new BudgetExhausted();
    this.executions++;
    try {
      const o = await this.executor.run(c, this.opts.signal);
      if (o.kind === 'infra-error' || o.kind === 'unsupported') this.infraErrors++;
      return o;
    } catch {
      this.infraErrors++;
      return undefined;
    }
  }

  private shows(o: RunOutcome | undefined, c: Case): o is Finding {
    if (!o || !isFinding(o)) return false;
    if (!this.signature) return true;
    return showsSignature(o, c, this.signature, this.match);
  }

  /** Runs until `need` runs showed it or it can no longer get there. */
  private async reproduces(c: Case): Promise<boolean> {
    let hits = 0;
    for (let i = 0; i < this.policy.runs; i++) {
      if (hits + (this.policy.runs - i) < this.policy.need) return false;
      let o: RunOutcome | undefined;
      try {
        o = await this.runOnce(c);
      } catch (err) {
        if (err instanceof BudgetExhausted) return false;
        throw err;
      }
      if (this.shows(o, c)) {
        hits++;
        if (hits >= this.policy.need) {
          this.lastShowing.set(c, o);
          return true;
        }
      }
    }
    return false;
  }

  private readonly lastShowing = new WeakMap<Case, Finding>();

  /** The predicate: valid, smaller or simpler (the caller's business), and shows the finding per the policy. Cached. */
  private pred = (c: Case): Promise<boolean> => {
    const key = JSON.stringify(c);
    let p = this.cache.get(key);
    if (p) return p;
    const v = validateCase(c);
    if (!v.ok) {
      this.rejected++;
      p = Promise.resolve(false);
    } else p = this.reproduces(c);
    this.cache.set(key, p);
    return p;
  };

  private accept(c: Case, why: string): void {
    this.best = c;
    const o = this.lastShowing.get(c);
    if (o) this.bestOutcome = o;
    this.progress(why);
  }

  /** Try candidates in order (concurrently in batches); take the first that holds. */
  private async tryFirst(candidates: Case[], why: string): Promise<boolean> {
    const fresh = candidates.filter((c) => JSON.stringify(c) !== JSON.stringify(this.best));
    if (!fresh.length) return false;
    const k = await firstHolding(fresh, this.pred, this.concurrency, () => this.outOfBudget());
    if (k < 0) return false;
    this.accept(fresh[k]!, why);
    return true;
  }

  private async timed(stage: StageName, fn: () => Promise<void>): Promise<void> {
    if (this.opts.skip?.includes(stage)) return;
    if (stage !== 'measure' && this.outOfBudget()) return;
    this.stage = stage;
    const before = caseSize(this.best);
    const e0 = this.executions;
    const t0 = performance.now();
    this.progress(`stage ${stage}: ${sizeText(before)}`);
    await fn();
    this.stages.push({ stage, executions: this.executions - e0, ms: Math.round(performance.now() - t0), before, after: caseSize(this.best) });
  }

  private async measure(c: Case, runs: number): Promise<Rate & { outcome?: Finding }> {
    let reproduced = 0;
    let outcome: Finding | undefined;
    for (let i = 0; i < runs; i++) {
      // Measuring is not cut short by the budget: the rate is part of the answer.
      this.executions++;
      let o: RunOutcome | undefined;
      try {
        o = await this.executor.run(c, this.opts.signal);
      } catch {
        this.infraErrors++;
      }
      if (o && (o.kind === 'infra-error' || o.kind === 'unsupported')) this.infraErrors++;
      if (o && isFinding(o) && !this.signature) this.signature = signatureOf(o, c);
      if (this.shows(o, c)) {
        reproduced++;
        outcome ??= o;
      }
    }
    return { runs, reproduced, outcome };
  }

  async run(): Promise<MinimizeResult> {
    const confirmRuns = Math.max(1, this.opts.confirmRuns ?? 5);
    let originalRate: Rate = { runs: 0, reproduced: 0 };
    await this.timed('confirm', async () => {
      const m = await this.measure(this.original, confirmRuns);
      originalRate = { runs: m.runs, reproduced: m.reproduced };
      this.originalOutcome = m.outcome;
      this.bestOutcome = m.outcome;
    });
    this.policy = this.opts.policy ?? policyForRate(originalRate, this.opts.maxRunsPerCandidate ?? 10);
    if (!this.signature || originalRate.reproduced === 0) return this.result(originalRate, originalRate, false);
    this.progress(`the original shows it in ${originalRate.reproduced} of ${originalRate.runs} runs; candidates need ${this.policy.need} of ${this.policy.runs}`);

    await this.timed('extract', () => this.extract());
    await this.timed('ops', () => this.sliceOps());
    await this.timed('threads', () => this.threads());
    await this.timed('stack', () => this.stack());
    await this.timed('simplify', () => this.simplify());
    await this.timed('numbers', async () => {
      // Until nothing shrinks: a smaller read can let the write before it shrink too.
      for (let round = 0; round < 4; round++) {
        const before = JSON.stringify(this.best);
        await this.numbers();
        if (JSON.stringify(this.best) === before) break;
      }
    });
    // Simpler paths and smaller sizes can make more ops and layers unnecessary.
    const afterFirst = JSON.stringify(this.best);
    await this.timed('ops', () => this.sliceOps());
    if (JSON.stringify(this.best) !== afterFirst) await this.timed('threads', () => this.threads());
    await this.timed('stack', () => this.stack());

    let finalRate: Rate = originalRate;
    let finalOutcome: Finding | undefined;
    await this.timed('measure', async () => {
      const m = await this.measure(this.best, confirmRuns);
      finalRate = { runs: m.runs, reproduced: m.reproduced };
      finalOutcome = m.outcome;
    });
    if (finalOutcome) this.bestOutcome = finalOutcome;
    return this.result(originalRate, finalRate, true);
  }

  private result(originalRate: Rate, finalRate: Rate, reproduced: boolean): MinimizeResult {
    const minimized = clone(this.best);
    if (reproduced && JSON.stringify(minimized) !== JSON.stringify(this.original)) {
      minimized.name = `${this.original.name.slice(0, 120)}-min`;
      minimized.meta = { ...minimized.meta, origin: 'minimized', parent: caseHash(this.original) };
    }
    const out: MinimizeResult = {
      original: this.original,
      minimized,
      signature: this.signature ?? { id: 'none', key: 'none', title: 'no finding', parts: { source: 'model', outcome: 'divergence' }, altIds: [] },
      reproduced,
      policy: this.policy,
      originalRate,
      finalRate,
      executions: this.executions,
      rejected: this.rejected,
      infraErrors: this.infraErrors,
      elapsedMs: Math.round(this.elapsed()),
      stages: this.stages,
      budgetExhausted: this.budgetExhausted,
    };
    if (this.bestOutcome) {
      out.outcome = this.bestOutcome;
      out.minimizedSignature = this.signature ? matchingSignature(this.bestOutcome, this.best, this.signature, this.match) : signatureOf(this.bestOutcome, this.best);
    }
    if (this.originalOutcome) out.originalOutcome = this.originalOutcome;
    return out;
  }

  // ---------------------------------------------------------------- stages

  /** The ops the finding names, alone: the reading op, the writers expected there, the writer seen. */
  private async extract(): Promise<void> {
    const o = this.originalOutcome;
    if (!o || o.kind !== 'divergence') return;
    const d = primaryDivergence(o.divergences);
    if (!d || d.op === undefined) return;
    const named = new Set<number>([d.op, ...(d.expectedWriters ?? []), ...(d.observedWriter !== undefined ? [d.observedWriter] : [])]);
    const keep = keepOps(this.best, named);
    const candidates = [serialize(keep), keep];
    // With the ops before the named one on the same object too (a sync or a truncate in between may matter).
    const target = allOps(this.best).find((x) => x.id === d.op);
    if (target && 'target' in target) {
      const same = new Set(named);
      for (const x of allOps(this.best)) if ('target' in x && x.target === target.target) same.add(x.id);
      candidates.push(serialize(keepOps(this.best, same)));
    }
    await this.tryFirst(candidates.map(dropUnusedLayers), 'kept only the ops the divergence names');
  }

  private async sliceOps(): Promise<void> {
    const groups = opGroups(this.best);
    if (groups.length < 2) return;
    const base = this.best;
    const build = (gs: number[][]) => keepOps(base, new Set(gs.flat()));
    const kept = await slice((gs) => this.pred(build(gs)), groups, {
      concurrency: this.concurrency,
      shouldStop: () => this.outOfBudget(),
      onReduce: (n) => this.progress(`ops: ${n} of ${groups.length} op groups left`),
    });
    if (kept.length < groups.length) {
      const c = build(kept);
      if (await this.pred(c)) this.accept(c, `ops: ${countOps(c)} ops left`);
    }
  }

  private async threads(): Promise<void> {
    if (this.best.program.threads.length < 2) return;
    if (await this.tryFirst([serialize(this.best)], 'one thread does it all')) return;
    let changed = true;
    while (changed && this.best.program.threads.length > 1) {
      const n = this.best.program.threads.length;
      changed = await this.tryFirst(Array.from({ length: n }, (_, t) => dropThread(this.best, t)), 'dropped a thread');
    }
  }

  /** Stack candidates for the current best, simplest first. */
  private stackCandidates(): Case[] {
    const c = this.best;
    const out: Case[] = [];
    const unused = dropUnusedLayers(c);
    if (unused !== c) out.push(unused);
    const byId = new Map(c.stack.layers.map((l) => [l.id, l]));
    for (const l of c.stack.layers) {
      const lowers = lowerOf(l);
      // A raw device instead of a file on a filesystem: the ops go to the device under the filesystem.
      if (l.kind === 'file') {
        const fsl = byId.get(l.on);
        if (fsl?.kind === 'fs') out.push(dropUnusedLayers(bypassLayer(c, l.id, fsl.on)));
        if (l.prealloc) out.push(editLayer(c, l.id, (x) => ({ ...x, prealloc: false }) as typeof x));
        continue;
      }
      // A layer taken out: what sat on it (and the ops on it) move to the one it sat on.
      if (l.kind !== 'fs' && l.kind !== 'disk' && l.kind !== 'scsi-debug' && lowers.length >= 1) {
        const lower = lowers[0]!;
        const delta = l.kind === 'loop' ? l.offset : l.kind === 'dm-linear' ? l.offset : 0;
        const lowerLayer = byId.get(lower);
        if (lowerLayer?.kind === 'file' || LAYER_BLOCKISH.has(lowerLayer?.kind ?? '')) out.push(dropUnusedLayers(bypassLayer(c, l.id, lower, delta)));
      }
      // A loop over a file on a filesystem: the loop directly on the filesystem's device.
      if (l.kind === 'loop') {
        const f = byId.get(l.on);
        const fsl = f?.kind === 'file' ? byId.get(f.on) : undefined;
        if (fsl?.kind === 'fs') out.push(dropUnusedLayers(editLayer(c, l.id, (x) => ({ ...x, on: fsl.on }) as typeof x)));
        if (l.directIo) out.push(editLayer(c, l.id, (x) => ({ ...x, directIo: false }) as typeof x));
        if (l.logicalBlockSize !== undefined && l.logicalBlockSize !== 512) out.push(editLayer(c, l.id, (x) => ({ ...x, logicalBlockSize: 512 }) as typeof x));
        if (l.sizeLimit !== undefined) out.push(editLayer(c, l.id, (x) => dropKey(x, 'sizeLimit')));
      }
      if (l.kind === 'dm-crypt' && l.integrity !== 'none') out.push(dropUnusedLayers(editLayer(c, l.id, (x) => ({ ...x, integrity: 'none' }) as typeof x)));
      if (l.kind === 'dm-crypt' && l.sectorSize !== 512) out.push(editLayer(c, l.id, (x) => ({ ...x, sectorSize: 512 }) as typeof x));
      if (l.kind === 'disk') {
        if (l.logicalBlockSize !== 512) out.push(editLayer(c, l.id, (x) => ({ ...x, logicalBlockSize: 512 }) as typeof x));
        if (l.physicalBlockSize !== undefined) out.push(editLayer(c, l.id, (x) => dropKey(x, 'physicalBlockSize')));
      }
      if (l.kind === 'fs') {
        if (l.mkfsOptions.length) out.push(editLayer(c, l.id, (x) => ({ ...x, mkfsOptions: [] }) as typeof x));
        if (l.mountOptions.length) out.push(editLayer(c, l.id, (x) => ({ ...x, mountOptions: [] }) as typeof x));
        if (l.blockSize !== 4096) out.push(editLayer(c, l.id, (x) => ({ ...x, blockSize: 4096 }) as typeof x));
      }
    }
    return out;
  }

  private async stack(): Promise<void> {
    for (let rounds = 0; rounds < 64; rounds++) {
      if (!(await this.tryFirst(this.stackCandidates(), 'simpler stack'))) return;
    }
  }

  private opSimplifications(op: Op): Op[] {
    const out: Op[] = [];
    if (op.kind === 'read' || op.kind === 'write') {
      const plain = { ...op, via: 'psync' as const, nowait: false, vectors: 1 };
      if (op.via !== 'psync' || op.nowait || op.vectors !== 1) out.push(plain);
      if (op.nowait) out.push({ ...op, nowait: false });
      if (op.vectors !== 1) out.push({ ...op, vectors: 1 });
      if (op.via === 'io_uring') out.push({ ...op, via: 'pvec' as const });
      if (op.buffer.placement !== 'heap' || op.buffer.align !== 0) out.push({ ...op, buffer: { placement: 'heap' as const, align: 0 } });
      if (op.buffer.align !== 0) out.push({ ...op, buffer: { ...op.buffer, align: 0 } });
      if (op.buffer.placement === 'anon' && op.buffer.touchedPages > 0) out.push({ ...op, buffer: { ...op.buffer, touchedPages: 0 } });
      if (op.kind === 'write' && op.dsync) out.push({ ...op, dsync: false });
      if (op.direct) out.push({ ...op, direct: false });
    }
    if (op.kind === 'sleep' && op.ms > 0) out.push({ ...op, ms: 0 });
    if (op.kind === 'fsync' && op.dataOnly) out.push({ ...op, dataOnly: false });
    if (op.kind === 'remount' && op.mode !== 'cycle') out.push({ ...op, mode: 'cycle' as const });
    if (op.kind === 'msync' && op.mode !== 'sync') out.push({ ...op, mode: 'sync' as const });
    return out;
  }

  private async simplify(): Promise<void> {
    for (const id of allOps(this.best).map((o) => o.id)) {
      for (let rounds = 0; rounds < 16; rounds++) {
        const op = allOps(this.best).find((o) => o.id === id);
        if (!op) break;
        const cands = this.opSimplifications(op).map((s) => editOp(this.best, id, () => s));
        if (!(await this.tryFirst(cands, `simpler op ${id}`))) break;
      }
    }
  }

  /** Smaller values for one number, most aggressive first: fast-check's shrinker, rounded to `unit`. */
  private static shrinkValues(value: number, min: number, unit: number): number[] {
    if (value <= min) return [];
    const seen = new Set<number>();
    const out: number[] = [];
    for (const v of fc.integer({ min, max: value }).shrink(value, undefined)) {
      const x = Math.max(min, Math.floor(v.value / unit) * unit);
      if (x < value && !seen.has(x)) {
        seen.add(x);
        out.push(x);
      }
      if (out.length >= 24) break;
    }
    return out;
  }

  /** Shrink one number of the best case with `set` until no smaller value holds. */
  private async shrinkNumber(get: (c: Case) => number | undefined, set: (c: Case, v: number) => Case, min: number, unit: number, what: string): Promise<void> {
    for (let rounds = 0; rounds < 64; rounds++) {
      const v = get(this.best);
      if (v === undefined) return;
      const values = Minimizer.shrinkValues(v, min, unit);
      if (!values.length) return;
      if (!(await this.tryFirst(values.map((x) => set(this.best, x)), `${what} -> smaller`))) return;
    }
  }

  private async numbers(): Promise<void> {
    // Shift every op on an object towards 0 together: relations between them stay.
    const objects = [...new Set(allOps(this.best).flatMap((o) => ('target' in o && 'offset' in o ? [o.target] : [])))];
    for (const obj of objects) {
      const minOffset = (c: Case) => {
        const offs = allOps(c).flatMap((o) => ('target' in o && o.target === obj && 'offset' in o && typeof o.offset === 'number' ? [o.offset] : []));
        return offs.length ? Math.min(...offs) : undefined;
      };
      const start = minOffset(this.best) ?? 0;
      const unit = start % 4096 === 0 ? 4096 : alignmentOf(start);
      await this.shrinkNumber(minOffset, (c, v) => shiftObject(c, obj, v - (minOffset(c) ?? 0)), 0, unit, `offsets on '${obj}'`);
    }
    for (const id of allOps(this.best).map((o) => o.id)) {
      const op0 = allOps(this.best).find((o) => o.id === id);
      if (!op0) continue;
      for (const field of numericFields(op0)) {
        const v0 = (op0 as unknown as Record<string, number>)[field]!;
        const min = field === 'length' ? 1 : 0;
        const unit = alignmentOf(v0);
        await this.shrinkNumber(
          (c) => (allOps(c).find((o) => o.id === id) as unknown as Record<string, number> | undefined)?.[field],
          (c, v) => editOp(c, id, (o) => ({ ...o, [field]: v }) as Op),
          Math.max(min, field === 'length' ? unit : 0),
          unit,
          `op ${id} ${field}`,
        );
      }
    }
    for (const l of this.best.stack.layers) {
      if (l.kind === 'disk') {
        const unit = 1024 * 1024;
        await this.shrinkNumber((c) => layerNum(c, l.id, 'size'), (c, v) => editLayer(c, l.id, (x) => ({ ...x, size: v }) as typeof x), unit, unit, `disk ${l.id} size`);
      }
      if (l.kind === 'file' && l.size > 0) {
        await this.shrinkNumber((c) => layerNum(c, l.id, 'size'), (c, v) => editLayer(c, l.id, (x) => ({ ...x, size: v }) as typeof x), 0, 4096, `file ${l.id} size`);
      }
    }
  }
}

const LAYER_BLOCKISH = new Set(['disk', 'scsi-debug', 'loop', 'md', 'dm-linear', 'dm-stripe', 'dm-crypt', 'dm-integrity', 'dm-flakey', 'dm-dust', 'dm-snapshot-origin', 'dm-snapshot']);

function dropKey<T extends object>(x: T, k: string): T {
  const out = { ...x } as Record<string, unknown>;
  delete out[k];
  return out as T;
}

/** The largest power of two up to 4096 that divides n (4096 for 0). */
export function alignmentOf(n: number): number {
  if (n === 0) return 4096;
  let a = 1;
  while (a < 4096 && n % (a * 2) === 0) a *= 2;
  return a;
}

function layerNum(c: Case, id: string, field: string): number | undefined {
  const l = c.stack.layers.find((x) => x.id === id) as unknown as Record<string, unknown> | undefined;
  const v = l?.[field];
  return typeof v === 'number' ? v : undefined;
}

/** Every op on `obj` moved by `delta` bytes (and mmap buffers into `obj`). */
function shiftObject(c: Case, obj: string, delta: number): Case {
  const out = clone(c);
  for (const t of out.program.threads)
    for (const op of t.ops) {
      if ('target' in op && op.target === obj && 'offset' in op && typeof op.offset === 'number') op.offset += delta;
      if ((op.kind === 'read' || op.kind === 'write') && op.buffer.placement === 'mmap' && op.buffer.file === obj) op.buffer.offset = Math.max(0, op.buffer.offset + delta - (delta % 4096));
    }
  return out;
}
