/**
 * TEST ONLY — a deliberately WRONG target, used to test the minimizer and
 * to benchmark it. It is not a model of any kernel and nothing outside
 * test/ and bench/ may use it.
 *
 * It answers like the reference model (predictObservation), except for its
 * planted bug: a read submitted through io_uring returns garbage in its
 * first min(512, length) bytes when, before it in program order (threads
 * taken phase by phase), a write covered the read's first byte on the same
 * object and after that write an fsync of that object ran. The oracle
 * (judgeObservation) then reports a wrong-data/garbage divergence on that
 * read, exactly as it would for a kernel doing this.
 *
 * So the minimal case that shows it is known: that write, that fsync and
 * that read, in one thread, on a bare disk (the bug ignores the stack), the
 * write and read as small as their alignment allows.
 *
 * With `probability` < 1 the bug fires only in that share of runs (a
 * seeded PRNG, so a test is repeatable): a flaky finding.
 */
import { type Case, type CaseInput, type Observation, type Op, type RunOutcome, judgeObservation, predictObservation, validateCase } from '../../../model/index.ts';
import type { Executor } from '../../../coordinator/triage/executor.ts';
import { mulberry32 } from '../../../infra/random.ts';

export interface PlantedBugOptions {
  /** Share of runs in which the bug fires when triggered. @defaultValue 1 */
  probability?: number;
  seed?: number;
  /** Share of runs answered with an infrastructure error instead (a flaky worker). @defaultValue 0 */
  infraErrorRate?: number;
  /** Milliseconds each run takes (to exercise concurrency). @defaultValue 0 */
  delayMs?: number;
}

/** Ops phase by phase, thread 0 first within a phase: the order the planted bug looks at. */
export function programOrder(c: Case): Op[] {
  const phases: Op[][][] = [];
  c.program.threads.forEach((t, ti) => {
    let p = 0;
    for (const op of t.ops) {
      if (op.kind === 'barrier') {
        p++;
        continue;
      }
      ((phases[p] ??= [])[ti] ??= []).push(op);
    }
  });
  return phases.flatMap((ph) => (ph ?? []).flatMap((t) => t ?? []));
}

/** The reads the planted bug hits in this case. */
export function triggeredReads(c: Case): number[] {
  const ops = programOrder(c);
  const hit: number[] = [];
  ops.forEach((r, i) => {
    if (r.kind !== 'read' || r.via !== 'io_uring') return;
    const before = ops.slice(0, i);
    const ok = before.some((w, j) => w.kind === 'write' && w.target === r.target && w.offset <= r.offset && r.offset < w.offset + w.length && before.slice(j + 1).some((f) => f.kind === 'fsync' && f.target === r.target));
    if (ok) hit.push(r.id);
  });
  return hit;
}

/** The bug itself: the first 512 bytes of each triggered read come back as garbage. */
export function plantBug(c: Case, obs: Observation): void {
  for (const id of triggeredReads(c)) {
    const r = obs.results.find((x) => x.op === id);
    if (!r || r.ret <= 0) continue;
    const bad = Math.min(512, r.ret);
    const rest = (r.data ?? []).flatMap((x) => {
      const s = Math.max(x.offset, bad);
      const e = x.offset + x.length;
      return e > s ? [{ ...x, offset: s, length: e - s }] : [];
    });
    r.data = [{ offset: 0, length: bad, src: 'unknown' }, ...rest];
  }
}

export class PlantedBugExecutor implements Executor {
  readonly name = 'test-only-planted-bug';
  executions = 0;
  private readonly rng: () => number;

  constructor(private readonly opts: PlantedBugOptions = {}) {
    this.rng = mulberry32(opts.seed ?? 1);
  }

  async run(c: Case): Promise<RunOutcome> {
    this.executions++;
    if (this.opts.delayMs) await new Promise((r) => setTimeout(r, this.opts.delayMs));
    if (this.rng() < (this.opts.infraErrorRate ?? 0)) return { kind: 'infra-error', target: this.name, message: 'test: a worker went away' };
    const v = validateCase(c);
    if (!v.ok) return { kind: 'infra-error', target: this.name, message: 'invalid case' };
    const obs = predictObservation(v.value, v.info, this.name);
    const fires = this.rng() < (this.opts.probability ?? 1);
    if (fires) plantBug(v.value, obs);
    const a = judgeObservation(v.value, v.info, obs);
    if (a.incomplete !== undefined) return { kind: 'infra-error', target: this.name, message: a.incomplete };
    return a.verdict === 'divergence'
      ? { kind: 'divergence', target: this.name, divergences: a.divergences, notes: a.notes, durationMs: 0 }
      : { kind: 'pass', target: this.name, notes: a.notes, durationMs: 0 };
  }
}

const MiB = 1024 * 1024;

/**
 * A case of `nOps` ops (plus barriers) in three threads over a loop device
 * (direct IO) on a file on ext4, with other files, and exactly one read the
 * planted bug hits: op `planted.read`, after write `planted.write` and fsync
 * `planted.fsync` of the loop device. The other ops are writes, reads
 * (psync, pvec, buffered and direct), fsyncs and flushes that the bug
 * ignores (no truncates: racing size changes make the model explore every
 * interleaving, which would make each run slow). Deterministic for a seed.
 */
export function plantedCase(nOps = 200, seed = 7): { theCase: Case; planted: { write: number; fsync: number; read: number } } {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const threads: Array<Array<Record<string, unknown>>> = [[], [], []];
  let id = 1;
  const LOOP_SIZE = 16 * MiB;
  const FILE_SIZE = 2 * MiB;
  // Noise never uses io_uring reads, so only the planted read can trigger the bug.
  const noise = (): Record<string, unknown> => {
    const k = rnd();
    const target = rnd() < 0.6 ? 'l0' : pick(['f1', 'f2']);
    const size = target === 'l0' ? LOOP_SIZE : FILE_SIZE;
    const direct = target === 'l0' && rnd() < 0.5;
    const len = (1 + Math.floor(rnd() * 4)) * 4096;
    const off = Math.floor(rnd() * ((size - len) / 4096)) * 4096;
    if (k < 0.4) return { kind: 'write', id: id++, target, offset: off, length: len, direct, via: pick(['psync', 'pvec', 'io_uring']) };
    if (k < 0.75) return { kind: 'read', id: id++, target, offset: off, length: len, direct, via: pick(['psync', 'pvec']) };
    if (k < 0.88) return { kind: 'fsync', id: id++, target: pick(['f1', 'f2']) };
    return { kind: 'flush', id: id++, target: 'l0' };
  };
  const total = nOps;
  // Positions of the planted ops in thread 0 (they must come in this order).
  const at = { write: Math.floor(total * 0.2), fsync: Math.floor(total * 0.5), read: Math.floor(total * 0.8) };
  const planted = { write: 0, fsync: 0, read: 0 };
  const W_OFF = 5 * MiB;
  let barrierNo = 0;
  for (let i = 0; i < total; i++) {
    if (i === at.write) {
      planted.write = id;
      threads[0]!.push({ kind: 'write', id: id++, target: 'l0', offset: W_OFF, length: 12288, direct: true, via: 'pvec', vectors: 3 });
      continue;
    }
    if (i === at.fsync) {
      planted.fsync = id;
      threads[0]!.push({ kind: 'fsync', id: id++, target: 'l0' });
      continue;
    }
    if (i === at.read) {
      planted.read = id;
      threads[0]!.push({ kind: 'read', id: id++, target: 'l0', offset: W_OFF + 4096, length: 8192, direct: true, via: 'io_uring', vectors: 2, nowait: false });
      continue;
    }
    // Noise writes never touch the planted range on l0, so the planted write stays its writer.
    let op = noise();
    while (op.target === 'l0' && typeof op.offset === 'number' && (op.offset as number) < W_OFF + 12288 && (op.offset as number) + (op.length as number) > W_OFF) op = noise();
    threads[i % 3]!.push(op);
    if (i > 0 && i % 70 === 0) {
      const name = `b${barrierNo++}`;
      for (const t of threads) t.push({ kind: 'barrier', id: id++, name });
    }
  }
  const input: CaseInput = {
    format: 'blockfarm-case/1',
    name: `planted-${total}`,
    seed: 4242,
    stack: {
      layers: [
        { id: 'd0', kind: 'disk', size: 64 * MiB },
        { id: 'fs0', kind: 'fs', on: 'd0', type: 'ext4' },
        { id: 'back', kind: 'file', on: 'fs0', name: 'back.img', size: LOOP_SIZE },
        { id: 'f1', kind: 'file', on: 'fs0', name: 'f1', size: FILE_SIZE },
        { id: 'f2', kind: 'file', on: 'fs0', name: 'f2', size: FILE_SIZE },
        { id: 'l0', kind: 'loop', on: 'back', directIo: true },
      ],
    },
    program: { threads: threads.map((ops) => ({ ops })) as CaseInput['program']['threads'] },
  };
  const v = validateCase(input);
  if (!v.ok) throw new Error(`plantedCase: invalid: ${v.issues.slice(0, 5).map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  return { theCase: v.value, planted };
}
