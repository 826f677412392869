/**
 * The content algebra. The model never holds bytes: an object's content is a
 * map from byte ranges to the SET of sources a byte there may come from.
 *
 * - zero: reads as zeros (holes, fresh disks, zeroed ranges)
 * - op(n, delta): op n's pattern; the byte at address a equals
 *   patternByte(seed, n, a + delta) (delta is 0 unless content moved:
 *   collapse/insert ranges, copies through mmap buffers)
 * - any: the model does not know (ciphertext of unwritten sectors, discarded
 *   ranges); every value is allowed
 * - error: reading it may fail (a bad block, a sector whose tag cannot verify)
 *
 * A set with more than one member is nondeterminism the kernel may resolve
 * either way (racing writers, a write a flaky device may have dropped). A set
 * that is exactly {error} means the read must fail: returning data there is
 * silently wrong data.
 */
export type Source = { t: 'zero' } | { t: 'any' } | { t: 'error' } | { t: 'noise' } | { t: 'op'; op: number; delta: number };

export type OpSource = Extract<Source, { t: 'op' }>;

const ANY = 1;
const ERROR = 2;
const ZERO = 4;
const NOISE = 8;

/**
 * A set of sources. Sets live as long as the content that holds them, one or
 * more per write, so a set of one op is a single small object: its list of
 * sources, its op map and its key are made on first use.
 */
export class SrcSet {
  /** Which of any, error, zero and noise the set holds (bits). */
  private readonly kinds: number;
  /** How many sources the set has (items.length, without making the list). */
  readonly size: number;
  /** How many op sources the set has. */
  readonly opCount: number;
  /** The first op source in the set's order (the one `ops` lists first), when opCount > 0: its op and delta. */
  readonly firstOpId: number;
  readonly firstOpDelta: number;
  /** Unions with other sets of the same table, memoised (see SetTable.union). */
  unionCache: Map<SrcSet, SrcSet> | undefined;
  private itemList: readonly Source[] | undefined;
  private opsByKey: Map<string, { op: number; delta: number }> | undefined;
  private keyText: string | undefined;
  /** `items` undefined: the set {op `opId` at `opDelta`}. */
  constructor(key: string | undefined, items: readonly Source[] | undefined, opId = 0, opDelta = 0) {
    this.keyText = key;
    this.itemList = items;
    if (!items) {
      this.kinds = 0;
      this.size = 1;
      this.opCount = 1;
      this.firstOpId = opId;
      this.firstOpDelta = opDelta;
      return;
    }
    let kinds = 0;
    let opCount = 0;
    let firstOpId = 0;
    let firstOpDelta = 0;
    for (const s of items) {
      if (s.t === 'op') {
        if (opCount++ === 0) {
          firstOpId = s.op;
          firstOpDelta = s.delta;
        }
      } else if (s.t === 'any') kinds |= ANY;
      else if (s.t === 'error') kinds |= ERROR;
      else if (s.t === 'zero') kinds |= ZERO;
      else kinds |= NOISE;
    }
    this.kinds = kinds;
    this.size = items.length;
    this.opCount = opCount;
    this.firstOpId = firstOpId;
    this.firstOpDelta = firstOpDelta;
  }
  get any(): boolean {
    return (this.kinds & ANY) !== 0;
  }
  get error(): boolean {
    return (this.kinds & ERROR) !== 0;
  }
  get zero(): boolean {
    return (this.kinds & ZERO) !== 0;
  }
  /** Damaged bytes (dm-flakey corrupt_bio_byte): garbage or zeroes, never another op's data. */
  get noise(): boolean {
    return (this.kinds & NOISE) !== 0;
  }
  /** The sources, in key order. */
  get items(): readonly Source[] {
    return (this.itemList ??= [{ t: 'op', op: this.firstOpId, delta: this.firstOpDelta }]);
  }
  /** The sources' keys joined: equal sets have equal keys. */
  get key(): string {
    return (this.keyText ??= this.items.map(sourceKey).join('|'));
  }
  /** Op sources, by "op@delta", in the set's order. */
  get ops(): ReadonlyMap<string, { op: number; delta: number }> {
    if (!this.opsByKey) {
      this.opsByKey = new Map();
      for (const s of this.items) if (s.t === 'op') this.opsByKey.set(sourceKey(s), { op: s.op, delta: s.delta });
    }
    return this.opsByKey;
  }
  /** Reading here must fail. */
  get mustError(): boolean {
    return this.size === 1 && (this.kinds & ERROR) !== 0;
  }
  /** Data (not an error) may be read here. */
  get mayHaveData(): boolean {
    return !this.mustError;
  }
  hasOp(op: number, delta: number): boolean {
    if (this.any) return true;
    if (this.opCount <= 1) return this.opCount === 1 && this.firstOpId === op && this.firstOpDelta === delta;
    return this.ops.has(`${op}@${delta}`);
  }
  toString(): string {
    return this.items.map(describeSource).join(' | ');
  }
}

export function sourceKey(s: Source): string {
  switch (s.t) {
    case 'zero': return 'z';
    case 'any': return 'a';
    case 'error': return 'e';
    case 'noise': return 'n';
    case 'op': return `${s.op}@${s.delta}`;
  }
}

export function describeSource(s: Source): string {
  switch (s.t) {
    case 'zero': return 'zeroes';
    case 'any': return 'any bytes';
    case 'error': return 'an error';
    case 'noise': return 'damaged bytes';
    case 'op': return s.delta === 0 ? `op ${s.op}` : `op ${s.op} (moved by ${-s.delta})`;
  }
}

/**
 * Interns source sets so that equal sets are the same object (cheap merging
 * and comparison). One table per evaluation: nothing outlives a judged case.
 */
export class SetTable {
  private readonly sets = new Map<string, SrcSet>();
  private readonly opSets: SrcSet[] = [];
  readonly zero = this.of([{ t: 'zero' }]);
  readonly any = this.of([{ t: 'any' }]);
  readonly error = this.of([{ t: 'error' }]);
  readonly noise = this.of([{ t: 'noise' }]);

  of(items: readonly Source[]): SrcSet {
    let list = dedupe(items);
    // 'any' already allows every value: keep it (and 'error', which is not a value) only.
    if (list.some((s) => s.t === 'any')) list = list.filter((s) => s.t === 'any' || s.t === 'error');
    if (list.length === 1 && list[0]!.t === 'op') return this.op(list[0]!.op, list[0]!.delta);
    list.sort((a, b) => (sourceKey(a) < sourceKey(b) ? -1 : 1));
    const key = list.map(sourceKey).join('|');
    let set = this.sets.get(key);
    if (!set) {
      set = new SrcSet(key, list);
      this.sets.set(key, set);
    }
    return set;
  }

  /** The set {op `op` at `delta`}: the one set of([{ t: 'op', op, delta }]) gives (of() comes here for it). */
  op(op: number, delta = 0): SrcSet {
    if (delta === 0) {
      // By op id: no key to build for the set every write stores.
      let set = this.opSets[op];
      if (!set) {
        set = new SrcSet(undefined, undefined, op, 0);
        this.opSets[op] = set;
      }
      return set;
    }
    const key = `${op}@${delta}`;
    let set = this.sets.get(key);
    if (!set) {
      set = new SrcSet(key, undefined, op, delta);
      this.sets.set(key, set);
    }
    return set;
  }

  union(a: SrcSet, b: SrcSet): SrcSet {
    if (a === b) return a;
    let u = a.unionCache?.get(b);
    if (!u) {
      u = this.of([...a.items, ...b.items]);
      (a.unionCache ??= new Map()).set(b, u);
      (b.unionCache ??= new Map()).set(a, u);
    }
    return u;
  }

  /** The same sources seen from content that moved by `d` bytes (collapse: d < 0, insert: d > 0). */
  moved(a: SrcSet, d: number): SrcSet {
    if (d === 0 || a.opCount === 0) return a;
    return this.of(a.items.map((s) => (s.t === 'op' ? { t: 'op', op: s.op, delta: s.delta - d } : s)));
  }

  /** Intersection, used to pin what an observation settled. */
  intersect(a: SrcSet, b: SrcSet): SrcSet | undefined {
    if (a === b) return a;
    if (a.any) return b;
    if (b.any) return a;
    const keys = new Set(b.items.map(sourceKey));
    const items = a.items.filter((s) => keys.has(sourceKey(s)));
    return items.length ? this.of(items) : undefined;
  }
}

function dedupe(items: readonly Source[]): Source[] {
  const seen = new Map<string, Source>();
  for (const s of items) seen.set(sourceKey(s), s);
  return [...seen.values()];
}

export type Piece = [start: number, end: number, set: SrcSet];

/** Most extents one leaf holds: small enough to edit by shifting, large enough to keep the leaf index short. */
const LEAF_MAX = 64;

/**
 * Up to LEAF_MAX extents in order: [starts[i], ends[i]) holds vals[i]. Shared
 * by a map and its clones until one of them changes it (copy on write).
 */
class Leaf {
  constructor(
    readonly starts: number[],
    readonly ends: number[],
    readonly vals: SrcSet[],
    /** The token of the map that may change this leaf in place. */
    readonly owner: object,
  ) {}
}

/** First index in [lo, hi) whose value is > x (xs sorted). */
function firstAbove(xs: readonly number[], lo: number, hi: number, x: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in [lo, hi) whose value is >= x (xs sorted). */
function firstAtOrAbove(xs: readonly number[], lo: number, hi: number, x: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Make [s, e) of the extents in (S, E, V) hold `v` (nothing stored where `v`
 * is the fill), joining it with a neighbour of the same set. In place.
 */
function editExtents(S: number[], E: number[], V: SrcSet[], s: number, e: number, v: SrcSet, fill: SrcSet): void {
  const n = S.length;
  // Extents [a, b) overlap [s, e): ends are sorted like starts (extents are disjoint).
  const a = firstAbove(E, 0, n, s);
  const b = firstAtOrAbove(S, a, n, e);
  let from = a;
  let to = b;
  let leftRem = a < b && S[a]! < s;
  let rightRem = a < b && E[b - 1]! > e;
  const leftS = leftRem ? S[a]! : 0;
  const leftV = leftRem ? V[a]! : fill;
  const rightE = rightRem ? E[b - 1]! : 0;
  const rightV = rightRem ? V[b - 1]! : fill;
  let ns = s;
  let ne = e;
  if (v !== fill) {
    if (leftRem && leftV === v) {
      ns = leftS;
      leftRem = false;
    } else if (!leftRem && a > 0 && E[a - 1] === s && V[a - 1] === v) {
      ns = S[a - 1]!;
      from = a - 1;
    }
    if (rightRem && rightV === v) {
      ne = rightE;
      rightRem = false;
    } else if (!rightRem && b < n && S[b] === e && V[b] === v) {
      ne = E[b]!;
      to = b + 1;
    }
  }
  const k = (leftRem ? 1 : 0) + (v !== fill ? 1 : 0) + (rightRem ? 1 : 0);
  const delta = k - (to - from);
  if (delta > 0) {
    for (let i = 0; i < delta; i++) {
      S.push(0);
      E.push(0);
      V.push(fill);
    }
    for (let i = n - 1; i >= to; i--) {
      S[i + delta] = S[i]!;
      E[i + delta] = E[i]!;
      V[i + delta] = V[i]!;
    }
  } else if (delta < 0) {
    for (let i = to; i < n; i++) {
      S[i + delta] = S[i]!;
      E[i + delta] = E[i]!;
      V[i + delta] = V[i]!;
    }
    S.length = E.length = V.length = n + delta;
  }
  let at = from;
  if (leftRem) {
    S[at] = leftS;
    E[at] = s;
    V[at++] = leftV;
  }
  if (v !== fill) {
    S[at] = ns;
    E[at] = ne;
    V[at++] = v;
  }
  if (rightRem) {
    S[at] = e;
    E[at] = rightE;
    V[at] = rightV;
  }
}

/**
 * A range map from byte ranges to source sets, with `fill` for every byte not
 * stored. The extents live in leaves of up to LEAF_MAX, found through an index
 * of their first starts; an edit shifts a few entries of one or two leaves.
 * clone() copies the index only and marks the leaves shared: the first write
 * to a shared leaf copies it (the model clones freely when it explores
 * interleavings, and a map nothing was cloned from is edited in place).
 */
export class ExtentMap {
  private constructor(
    readonly table: SetTable,
    readonly fill: SrcSet,
    /** In order; never empty; firsts[i] === leaves[i].starts[0]. */
    private leaves: Leaf[],
    private firsts: number[],
    /** Leaves whose owner is this token are this map's alone. */
    private owner: object,
    private count: number,
    /**
     * A set that may error was stored at some point (never reset; clones
     * inherit it). While false no stored extent can error, so error queries
     * need not walk the map.
     */
    private storedError: boolean,
    /** Likewise: a set of more than one source was stored at some point. */
    private storedSeveral: boolean,
    /** Most extents per leaf (small in tests, to split and merge leaves often). */
    private readonly leafMax: number,
  ) {}

  static create(table: SetTable, fill: SrcSet, leafMax = LEAF_MAX): ExtentMap {
    return new ExtentMap(table, fill, [], [], {}, 0, false, false, Math.max(2, leafMax));
  }

  clone(): ExtentMap {
    // Both maps take new tokens: every leaf is now shared and is copied by whichever writes it first.
    this.owner = {};
    return new ExtentMap(this.table, this.fill, this.leaves.slice(), this.firsts.slice(), {}, this.count, this.storedError, this.storedSeveral, this.leafMax);
  }

  /** Some piece may have a set of more than one source (false: every piece has at most one, without looking). */
  mayHoldSeveral(): boolean {
    return this.storedSeveral || this.fill.size > 1;
  }

  /** Some byte of [s, e) may fail to read: pieces(s, e).some(([, , v]) => v.error), without listing the pieces when nothing stored can error. */
  mayError(s: number, e: number): boolean {
    if (s >= e) return false;
    if (!this.storedError && !this.fill.error) return false;
    return this.pieces(s, e).some(([, , v]) => v.error);
  }

  get extentCount(): number {
    return this.count;
  }

  /** Index of the last leaf whose first extent starts at or before pos, or -1. */
  private leafAt(pos: number): number {
    return firstAbove(this.firsts, 0, this.firsts.length, pos) - 1;
  }

  /** The pieces covering [s, e), in order, with gaps shown as `fill`. */
  pieces(s: number, e: number): Piece[] {
    if (s >= e) return [];
    const leaves = this.leaves;
    const fill = this.fill;
    // Two walks: the first counts, so that the list is made at its length (reads keep asking for one or two pieces).
    let li0 = this.leafAt(s);
    let i0 = 0;
    if (li0 < 0) li0 = 0;
    else {
      const ends = leaves[li0]!.ends;
      i0 = firstAbove(ends, 0, ends.length, s);
    }
    let n = 0;
    let pos = s;
    count: for (let li = li0, i = i0; li < leaves.length; li++, i = 0) {
      const { starts, ends } = leaves[li]!;
      for (; i < starts.length; i++) {
        const ks = starts[i]!;
        if (ks >= e) break count;
        if (ks > pos) n++;
        n++;
        pos = ends[i]! < e ? ends[i]! : e;
      }
    }
    if (pos < e) n++;
    const out = new Array<Piece>(n);
    let k = 0;
    pos = s;
    fillIn: for (let li = li0, i = i0; li < leaves.length; li++, i = 0) {
      const { starts, ends, vals } = leaves[li]!;
      for (; i < starts.length; i++) {
        const ks = starts[i]!;
        if (ks >= e) break fillIn;
        if (ks > pos) {
          out[k++] = [pos, ks, fill];
          pos = ks;
        }
        const ke = ends[i]! < e ? ends[i]! : e;
        out[k++] = [pos, ke, vals[i]!];
        pos = ke;
      }
    }
    if (pos < e) out[k++] = [pos, e, fill];
    return out;
  }

  /** Every byte of [s, e) now comes from `v`. */
  assign(s: number, e: number, v: SrcSet): void {
    if (s >= e) return;
    const fill = this.fill;
    if (v !== fill) {
      if (v.error) this.storedError = true;
      if (v.size > 1) this.storedSeveral = true;
    }
    const leaves = this.leaves;
    if (leaves.length === 0) {
      if (v === fill) return;
      this.leaves = [new Leaf([s], [e], [v], this.owner)];
      this.firsts = [s];
      this.count = 1;
      return;
    }
    // The leaves that hold what [s, e) overlaps and its neighbours ending at s or starting at e.
    let lo = this.leafAt(s);
    if (lo < 0) lo = 0;
    else if (lo > 0 && this.firsts[lo] === s) lo--;
    const hi = Math.max(lo, this.leafAt(e));
    if (lo === hi) {
      let leaf = leaves[lo]!;
      if (leaf.owner !== this.owner) leaves[lo] = leaf = new Leaf(leaf.starts.slice(), leaf.ends.slice(), leaf.vals.slice(), this.owner);
      const before = leaf.starts.length;
      editExtents(leaf.starts, leaf.ends, leaf.vals, s, e, v, fill);
      const after = leaf.starts.length;
      this.count += after - before;
      if (after > 0 && after <= this.leafMax && (after * 4 >= this.leafMax || lo + 1 === leaves.length)) {
        this.firsts[lo] = leaf.starts[0]!;
        return;
      }
      this.relayout(lo, lo, leaf.starts, leaf.ends, leaf.vals);
      return;
    }
    const S: number[] = [];
    const E: number[] = [];
    const V: SrcSet[] = [];
    let before = 0;
    for (let li = lo; li <= hi; li++) {
      const l = leaves[li]!;
      before += l.starts.length;
      for (let i = 0; i < l.starts.length; i++) {
        S.push(l.starts[i]!);
        E.push(l.ends[i]!);
        V.push(l.vals[i]!);
      }
    }
    editExtents(S, E, V, s, e, v, fill);
    this.count += S.length - before;
    this.relayout(lo, hi, S, E, V);
  }

  /**
   * Replace leaves [lo, hi] by the extents (S, E, V), cut into leaves of at
   * most leafMax; a result under a quarter of that takes in the next leaf
   * first, so the index does not fill with slivers.
   */
  private relayout(lo: number, hi: number, S: number[], E: number[], V: SrcSet[]): void {
    const leaves = this.leaves;
    if (S.length * 4 < this.leafMax && hi + 1 < leaves.length) {
      const next = leaves[hi + 1]!;
      S = S.concat(next.starts);
      E = E.concat(next.ends);
      V = V.concat(next.vals);
      hi++;
    }
    const n = S.length;
    const parts = Math.ceil(n / this.leafMax);
    const made: Leaf[] = [];
    const firsts: number[] = [];
    if (parts === 1) made.push(new Leaf(S, E, V, this.owner));
    else
      for (let p = 0; p < parts; p++) {
        const from = Math.floor((p * n) / parts);
        const to = Math.floor(((p + 1) * n) / parts);
        made.push(new Leaf(S.slice(from, to), E.slice(from, to), V.slice(from, to), this.owner));
      }
    for (const l of made) firsts.push(l.starts[0]!);
    leaves.splice(lo, hi - lo + 1, ...made);
    this.firsts.splice(lo, hi - lo + 1, ...firsts);
  }

  /** Every extent, in order (for the rare edits that move or drop much of the map). */
  private flat(): { S: number[]; E: number[]; V: SrcSet[] } {
    const S: number[] = [];
    const E: number[] = [];
    const V: SrcSet[] = [];
    for (const l of this.leaves)
      for (let i = 0; i < l.starts.length; i++) {
        S.push(l.starts[i]!);
        E.push(l.ends[i]!);
        V.push(l.vals[i]!);
      }
    return { S, E, V };
  }

  private setFlat(S: number[], E: number[], V: SrcSet[]): void {
    this.leaves = [];
    this.firsts = [];
    this.count = S.length;
    if (S.length) this.relayout(0, -1, S, E, V);
  }

  /** Replace the set of every piece in [s, e) with f(set). */
  transform(s: number, e: number, f: (v: SrcSet) => SrcSet): void {
    for (const [ps, pe, v] of this.pieces(s, e)) {
      const nv = f(v);
      if (nv !== v) this.assign(ps, pe, nv);
    }
  }

  /** Forget everything from `pos` on (it reads as `fill` again). */
  clearFrom(pos: number): void {
    this.assign(pos, Number.MAX_SAFE_INTEGER, this.fill);
  }

  /**
   * Move all content at or after `pos` by `d` bytes: d > 0 opens a gap of
   * `fill` at [pos, pos+d) (insert range); d < 0 removes [pos, pos-d) and
   * closes the gap (collapse range).
   */
  shift(pos: number, d: number): void {
    if (d === 0) return;
    const from = d < 0 ? pos - d : pos;
    const { S, E, V } = this.flat();
    const outS: number[] = [];
    const outE: number[] = [];
    const outV: SrcSet[] = [];
    for (let i = 0; i < S.length; i++) {
      const s = S[i]!;
      const e = E[i]!;
      const v = V[i]!;
      // What lies before pos stays; what lies at or after `from` moves by d; [pos, from) is gone.
      if (s < pos) {
        outS.push(s);
        outE.push(Math.min(e, pos));
        outV.push(v);
      }
      const ms = Math.max(s, from);
      if (e > ms) {
        outS.push(ms + d);
        outE.push(e + d);
        outV.push(this.table.moved(v, d));
      }
    }
    this.setFlat(outS, outE, outV);
  }

  /** Per-byte union with another map over [s, e). */
  unionWith(other: ExtentMap, s: number, e: number): void {
    for (const [ps, pe, v] of other.pieces(s, e)) this.transform(ps, pe, (mine) => this.table.union(mine, v));
  }
}
