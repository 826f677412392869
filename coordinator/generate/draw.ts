/**
 * Imperative random choices on top of fast-check's `gen`: the generator
 * builds stacks and programs step by step (each choice depends on the ones
 * before), which reads better as code than as nested `chain`s. Every choice
 * still comes from fast-check's seeded random source, so a campaign seed
 * reproduces every case.
 *
 * All integers come from one uniform 31-bit draw scaled to the range: one
 * arbitrary for the whole case keeps gen's per-builder cache at one entry,
 * and probabilities stay what the code says (the caller wraps the gen in
 * fc.noBias so that fast-check's small-value bias does not skew them).
 */
import fc from 'fast-check';

const U31 = { min: 0, max: 0x7fffffff };
const TWO31 = 0x80000000;

export class Draw {
  constructor(private readonly g: fc.GeneratorValue) {}

  private u31(): number {
    return this.g(fc.integer, U31);
  }

  /** A uniform integer in [min, max]. */
  int(min: number, max: number): number {
    if (max <= min) return min;
    const range = max - min + 1;
    if (range <= TWO31) return min + Math.floor((this.u31() / TWO31) * range);
    // Wider ranges: 53 bits from two draws.
    const x = (this.u31() * 2 ** 22 + (this.u31() >>> 9)) / 2 ** 53;
    return min + Math.floor(x * range);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.u31() < p * TWO31;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Draw.pick: nothing to pick from');
    return items[this.int(0, items.length - 1)]!;
  }

  /** One value by relative weight (weights <= 0 never win). */
  weighted<T>(choices: ReadonlyArray<readonly [number, T]>): T {
    const live = choices.filter(([w]) => w > 0);
    if (live.length === 0) throw new Error('Draw.weighted: every weight is zero');
    const total = live.reduce((n, [w]) => n + w, 0);
    let x = (this.u31() / TWO31) * total;
    for (const [w, v] of live) {
      if (x < w) return v;
      x -= w;
    }
    return live[live.length - 1]![1];
  }

  /** Up to `max` distinct items in random order (at least `min`, as far as there are). */
  some<T>(items: readonly T[], min: number, max: number): T[] {
    const pool = [...items];
    const n = Math.min(pool.length, this.int(min, max));
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(pool.splice(this.int(0, pool.length - 1), 1)[0]!);
    return out;
  }

  /** A value of an arbitrary (a layer kind's generation hook). */
  from<T>(arb: fc.Arbitrary<T>): T {
    return this.g(() => arb);
  }
}

/**
 * A fresh `gen` per value: its cache of arbitraries lives as long as one case,
 * so a long campaign's memory stays flat.
 */
export function drawArbitrary(): fc.Arbitrary<Draw> {
  return fc.noBias(fc.constant(null).chain(() => fc.gen())).map((g) => new Draw(g));
}

/** One Draw for a seed, outside any property (mutation, the CLI). */
export function drawFor(seed: number): Draw {
  return fc.sample(drawArbitrary(), { seed: seed | 0, numRuns: 1 })[0]!;
}

/** A 32-bit mix of a campaign seed and an index (splitmix-style), for per-case seeds. */
export function mixSeed(seed: number, index: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index >>> 0, 0x85ebca6b) ^ 0x27d4eb2f) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}
