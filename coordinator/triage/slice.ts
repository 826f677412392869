/**
 * The generic minimizer: slice(pred, items) returns a 1-minimal sublist of
 * `items` for which `pred` holds (removing any single remaining item makes it
 * fail), in the manner of delta debugging (Zeller's ddmin): try the chunks
 * alone, then without each chunk, and refine the chunks when nothing helps.
 *
 * Parallel-friendly: the candidates of a round are independent, so up to
 * `concurrency` of them are evaluated at once; of those that hold, the first
 * in order is taken, so the result does not depend on which finished first.
 * Candidates are cached by the indices they keep: none is evaluated twice.
 *
 * pred(items) must hold for the full list; it is never asked about the empty
 * list. It may return false for any reason (the candidate is invalid, the
 * budget is spent); `shouldStop` ends slicing early with the best so far.
 */

export interface SliceOptions {
  /** Candidates evaluated at once (default 1). */
  concurrency?: number;
  /** Checked before each batch: true ends slicing with the best list so far. */
  shouldStop?: () => boolean;
  /** Called whenever the list got smaller. */
  onReduce?: (size: number) => void;
}

/**
 * Evaluate candidates in order, `concurrency` at a time; the index of the
 * first (in order) for which pred holds, or -1.
 */
export async function firstHolding<C>(candidates: readonly C[], pred: (c: C) => Promise<boolean>, concurrency = 1, shouldStop?: () => boolean): Promise<number> {
  const width = Math.max(1, Math.floor(concurrency));
  for (let at = 0; at < candidates.length; at += width) {
    if (shouldStop?.()) return -1;
    const batch = candidates.slice(at, at + width);
    const results = await Promise.all(batch.map((c) => pred(c)));
    const k = results.indexOf(true);
    if (k >= 0) return at + k;
  }
  return -1;
}

function chunks(xs: readonly number[], n: number): number[][] {
  const out: number[][] = [];
  const size = xs.length / n;
  for (let i = 0; i < n; i++) {
    const part = xs.slice(Math.round(i * size), Math.round((i + 1) * size));
    if (part.length) out.push(part);
  }
  return out;
}

export async function slice<T>(pred: (items: T[]) => Promise<boolean>, items: readonly T[], opts: SliceOptions = {}): Promise<T[]> {
  const cache = new Map<string, Promise<boolean>>();
  const test = (idx: readonly number[]): Promise<boolean> => {
    const key = idx.join(',');
    let p = cache.get(key);
    if (!p) {
      p = pred(idx.map((i) => items[i]!));
      cache.set(key, p);
    }
    return p;
  };
  let cur = items.map((_, i) => i);
  let n = 2;
  while (cur.length >= 2) {
    if (opts.shouldStop?.()) break;
    const parts = chunks(cur, Math.min(n, cur.length));
    // Each chunk alone first (a big jump when the cause is in one place), then without each chunk.
    const subsets = parts.length > 1 ? parts : [];
    const complements = parts.length > 2 ? parts.map((_, i) => parts.flatMap((p, j) => (j === i ? [] : p))) : [];
    const candidates = [...subsets, ...complements];
    const k = await firstHolding(candidates, test, opts.concurrency, opts.shouldStop);
    if (k >= 0 && k < subsets.length) {
      cur = candidates[k]!;
      n = 2;
      opts.onReduce?.(cur.length);
    } else if (k >= 0) {
      cur = candidates[k]!;
      n = Math.max(n - 1, 2);
      opts.onReduce?.(cur.length);
    } else if (n >= cur.length) break;
    else n = Math.min(cur.length, n * 2);
  }
  // One by one at the end: ddmin is 1-minimal only when it got down to single items.
  let changed = true;
  while (changed && cur.length > 1 && !opts.shouldStop?.()) {
    changed = false;
    const without = cur.map((_, i) => cur.filter((__, j) => j !== i));
    const k = await firstHolding(without, test, opts.concurrency, opts.shouldStop);
    if (k >= 0) {
      cur = without[k]!;
      changed = true;
      opts.onReduce?.(cur.length);
    }
  }
  return cur.map((i) => items[i]!);
}
