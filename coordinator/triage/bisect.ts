/**
 * Cross-kernel view and bisection.
 *
 * crossKernel(case, executors) runs a (minimized) case on every kernel it is
 * given, `runs` times each, and says on which it shows the finding.
 *
 * bisect(case, kernels, executorFor) finds, over an ordered series of
 * kernels (oldest first: a Debian package series), the first one whose
 * verdict differs from the oldest's: where the bug came in (the oldest is
 * clean) or went away (the oldest shows it). Each version is run up to
 * `runsPerVersion` times and counts as showing it at the first run that does
 * (a finding is never a false positive; the two ends of the series run all
 * their runs, to measure the rate); a version that never shows it is
 * clean only with some confidence when the finding is flaky. The rate p is
 * estimated from the versions that showed it (all their runs), and a clean
 * verdict after n runs is wrong with probability (1-p)^n; clean versions
 * get more runs (up to `maxRunsPerVersion`) until that is below
 * 1 - `targetConfidence`. The result's confidence is the product over the
 * clean verdicts the answer rests on. A version whose runs all end in
 * infrastructure errors is skipped (like git bisect skip) and its neighbour
 * tried instead. Without a known rate (opts.rate) and before any version
 * showed the finding, the rate is taken as 1: pass the minimizer's rate
 * for a flaky finding.
 */
import type { Case, RunOutcome } from '../../model/index.ts';
import type { Executor } from './executor.ts';
import { type MatchMode, type Signature, isFinding, showsSignature } from './signature.ts';

export interface VersionVerdict {
  kernel: string;
  runs: number;
  reproduced: number;
  infraErrors: number;
  verdict: 'shows' | 'clean' | 'unknown';
}

export interface ShowOptions {
  /** The finding to look for; any finding when left out. */
  signature?: Signature;
  match?: MatchMode;
  signal?: AbortSignal;
}

function showsIt(o: RunOutcome | undefined, c: Case, opts: ShowOptions): boolean {
  if (!o || !isFinding(o)) return false;
  return opts.signature ? showsSignature(o, c, opts.signature, opts.match ?? 'core') : true;
}

async function runOnce(ex: Executor, c: Case, opts: ShowOptions): Promise<'shows' | 'clean' | 'infra'> {
  try {
    const o = await ex.run(c, opts.signal);
    if (o.kind === 'infra-error' || o.kind === 'unsupported') return 'infra';
    return showsIt(o, c, opts) ? 'shows' : 'clean';
  } catch {
    return 'infra';
  }
}

/** Up to `runs` runs; with `stopAtFirst`, stops when one shows it. */
async function testVersion(kernel: string, ex: Executor, c: Case, runs: number, stopAtFirst: boolean, opts: ShowOptions, into?: VersionVerdict): Promise<VersionVerdict> {
  const v: VersionVerdict = into ?? { kernel, runs: 0, reproduced: 0, infraErrors: 0, verdict: 'unknown' };
  for (let i = 0; i < runs; i++) {
    if (opts.signal?.aborted) break;
    const r = await runOnce(ex, c, opts);
    if (r === 'infra') v.infraErrors++;
    else {
      v.runs++;
      if (r === 'shows') v.reproduced++;
    }
    if (stopAtFirst && v.reproduced > 0) break;
  }
  v.verdict = v.reproduced > 0 ? 'shows' : v.runs > 0 ? 'clean' : 'unknown';
  return v;
}

export interface CrossKernelOptions extends ShowOptions {
  /** Runs per kernel. @defaultValue 3 */
  runs?: number;
  /** Kernels tested at once. @defaultValue 1 */
  concurrency?: number;
}

/** The case on every kernel: which show the finding, how often. */
export async function crossKernel(c: Case, executors: Iterable<[string, Executor]>, opts: CrossKernelOptions = {}): Promise<VersionVerdict[]> {
  const list = [...executors];
  const out: VersionVerdict[] = new Array(list.length);
  const width = Math.max(1, opts.concurrency ?? 1);
  for (let at = 0; at < list.length; at += width)
    await Promise.all(
      list.slice(at, at + width).map(async ([kernel, ex], k) => {
        out[at + k] = await testVersion(kernel, ex, c, opts.runs ?? 3, false, opts);
      }),
    );
  return out;
}

export interface BisectOptions extends ShowOptions {
  /** Runs per version before a clean verdict. @defaultValue 3 */
  runsPerVersion?: number;
  /** More runs for a clean verdict on a flaky finding, up to this many. @defaultValue 3 * runsPerVersion */
  maxRunsPerVersion?: number;
  /** Wanted chance that each clean verdict is right. @defaultValue 0.95 */
  targetConfidence?: number;
  /**
   * The rate a run shows the finding where it exists, if known beforehand
   * (the minimizer's measurement): weighs as 4 runs in the estimate, and
   * lets a flaky finding's clean verdicts get their extra runs before any
   * version has shown it.
   */
  rate?: number;
  onProgress?: (v: VersionVerdict) => void;
}

const PRIOR_RUNS = 4;

export interface BisectResult {
  /** A change point was found. */
  found: boolean;
  /** 'introduced': the oldest is clean and a newer one shows it; 'fixed': the other way round. */
  direction?: 'introduced' | 'fixed';
  /** The first version whose verdict differs from the oldest's. */
  first?: string;
  /** The version before it (same verdict as the oldest). */
  last?: string;
  /** Every version tested, in series order. */
  tested: VersionVerdict[];
  /** Estimated chance a run shows the finding where it exists. */
  rate: number;
  /** Chance the answer is right, from the clean verdicts it rests on. */
  confidence: number;
  executions: number;
  message: string;
}

export async function bisect(c: Case, kernels: readonly string[], executorFor: (kernel: string) => Executor | Promise<Executor>, opts: BisectOptions = {}): Promise<BisectResult> {
  const n = opts.runsPerVersion ?? 3;
  const max = Math.max(n, opts.maxRunsPerVersion ?? 3 * n);
  const target = opts.targetConfidence ?? 0.95;
  const verdicts = new Map<number, VersionVerdict>();
  const executors = new Map<string, Executor>();
  const ex = async (k: string) => {
    let e = executors.get(k);
    if (!e) executors.set(k, (e = await executorFor(k)));
    return e;
  };
  const rate = () => {
    let runs = 0;
    let hits = 0;
    for (const v of verdicts.values())
      if (v.verdict === 'shows') {
        runs += v.runs;
        hits += v.reproduced;
      }
    if (opts.rate !== undefined) {
      runs += PRIOR_RUNS;
      hits += PRIOR_RUNS * Math.min(1, Math.max(0, opts.rate));
    }
    return runs ? hits / runs : 1;
  };
  /** Endpoints run all their runs (they give the rate); the versions in between stop at the first hit. */
  const test = async (i: number, full = false): Promise<VersionVerdict> => {
    const k = kernels[i]!;
    let v = verdicts.get(i);
    if (!v) {
      v = await testVersion(k, await ex(k), c, n, !full, opts);
      verdicts.set(i, v);
    }
    // A clean verdict on a flaky finding: more runs until it is likely right.
    while (v.verdict === 'clean' && v.runs < max && (1 - rate()) ** v.runs > 1 - target && !opts.signal?.aborted) await testVersion(k, await ex(k), c, 1, true, opts, v);
    opts.onProgress?.(v);
    return v;
  };
  const known = (v: VersionVerdict) => v.verdict !== 'unknown';
  const finish = (r: Omit<BisectResult, 'tested' | 'rate' | 'confidence' | 'executions'>, used: number[]): BisectResult => {
    const p = rate();
    let confidence = 1;
    for (const i of used) {
      const v = verdicts.get(i);
      if (v?.verdict === 'clean') confidence *= 1 - (1 - p) ** v.runs;
    }
    const tested = [...verdicts.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
    return { ...r, tested, rate: p, confidence, executions: tested.reduce((s, v) => s + v.runs + v.infraErrors, 0) };
  };
  if (kernels.length < 2) return finish({ found: false, message: 'bisection needs at least two kernels' }, []);

  // The oldest and newest usable versions.
  let lo = 0;
  while (lo < kernels.length && !known(await test(lo, true))) lo++;
  let hi = kernels.length - 1;
  while (hi > lo && !known(await test(hi, true))) hi--;
  if (hi <= lo) return finish({ found: false, message: 'fewer than two kernels gave a verdict (infrastructure errors)' }, []);
  const base = verdicts.get(lo)!.verdict;
  if (verdicts.get(hi)!.verdict === base)
    return finish({ found: false, message: `${kernels[lo]} and ${kernels[hi]} agree (${base === 'shows' ? 'both show it' : 'both clean'}): no change in this series` }, [lo, hi]);

  // Invariant: lo has the base verdict, hi the other one.
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    // Skip versions without a verdict, outwards from the middle.
    let pick: number | undefined;
    for (let d = 0; pick === undefined && (mid - d > lo || mid + d < hi); d++) {
      for (const j of [mid + d, mid - d]) {
        if (j <= lo || j >= hi || pick !== undefined) continue;
        if (known(await test(j))) pick = j;
      }
    }
    if (pick === undefined) break;
    if (verdicts.get(pick)!.verdict === base) lo = pick;
    else hi = pick;
  }
  const skipped = [...verdicts.entries()].filter(([i, v]) => i > lo && i < hi && v.verdict === 'unknown');
  const direction = base === 'clean' ? 'introduced' : 'fixed';
  const used = [lo, hi];
  const r = finish(
    {
      found: true,
      direction,
      first: kernels[hi],
      last: kernels[lo],
      message:
        `${direction === 'introduced' ? 'first shows it' : 'first clean'}: ${kernels[hi]} (last ${base === 'clean' ? 'clean' : 'showing it'}: ${kernels[lo]})` +
        (skipped.length ? `; ${skipped.length} version(s) in between gave no verdict: ${skipped.map(([i]) => kernels[i]).join(', ')}` : ''),
    },
    // Every clean verdict on the way counts: a wrong one would have sent the search the wrong way.
    [...verdicts.keys()].filter((i) => i !== lo && i !== hi).concat(used),
  );
  return r;
}
