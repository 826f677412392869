/**
 * The data pattern: every byte a case writes is a pure function of
 * (case seed, op id, byte address), so the model, each target and each report
 * agree on what op wrote which byte without shipping any data. Op ids are
 * stable under minimization, so a minimized case writes the same bytes.
 *
 * A byte is the (address mod 4)-th byte of a 32-bit hash of the 4-byte word
 * it falls in; pattern bytes are never zero, so zeroes always mean "no op
 * wrote this". The executor (C) implements the same function; the golden
 * vectors in test/unit/pattern.test.ts pin both.
 */

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The 32-bit word covering bytes [4w, 4w+4) of op `op`'s pattern. */
export function patternWord(seed: number, op: number, word: number): number {
  const lo = word >>> 0;
  const hi = Math.floor(word / 0x1_0000_0000) >>> 0;
  let h = fmix32((seed ^ 0x9e3779b9) >>> 0);
  h = fmix32((h ^ op) >>> 0);
  h = fmix32((h ^ lo) >>> 0);
  h = fmix32((h ^ hi ^ 0x5bd1e995) >>> 0);
  return h;
}

export function patternByte(seed: number, op: number, addr: number): number {
  const w = patternWord(seed, op, Math.floor(addr / 4));
  const b = (w >>> ((addr % 4) * 8)) & 0xff;
  return b === 0 ? 0xa5 : b;
}

/** Bytes [addr, addr+len) of op `op`'s pattern. */
export function patternBytes(seed: number, op: number, addr: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = patternByte(seed, op, addr + i);
  return out;
}

/** Where a run of bytes came from, as a target reports it after decoding what it read. */
export type ObservedSource = 'zero' | 'unknown' | { op: number; delta: number };

export interface DecodedExtent {
  /** Offset of the run inside the decoded buffer. */
  offset: number;
  length: number;
  src: ObservedSource;
}

/** A writer to try: its op, the delta of its bytes, and optionally the only addresses it can be at. */
export interface DecodeCandidate {
  op: number;
  delta: number;
  /** [start, end): the candidate is tried at a run start only inside (where its op wrote, as the executor indexes it). */
  home?: readonly [number, number];
}

/**
 * Turn raw bytes read from address `addr` into runs attributed to a writer.
 * Byte i matches (op, delta) when it equals patternByte(seed, op, addr + i +
 * delta). This is the reference of the executor's decoder (C), which must
 * give exactly the same runs:
 * - the current run goes on while its source matches;
 * - at a run start, the candidate (zero first, then the list's order) with
 *   the longest match over the next 8 bytes wins, even a 1-3 byte one: a
 *   short write, or a sliver an overlapping write left, is real data;
 * - after a byte that matches nothing (garbage), candidates are tried again
 *   only at addresses that are multiples of 16 and must match at least
 *   min(4, remaining) bytes there (chance matches would otherwise cut
 *   garbage into millions of runs); an accepted run is extended backwards
 *   over up to 15 unknown bytes it also explains.
 */
export function decodeBytes(seed: number, bytes: Uint8Array, addr: number, candidates: ReadonlyArray<DecodeCandidate>): DecodedExtent[] {
  const windows = new Map<string, Uint8Array>();
  const patternAt = (c: DecodeCandidate, i: number): number => {
    const k = `${c.op}/${c.delta}`;
    let w = windows.get(k);
    if (!w) windows.set(k, (w = patternBytes(seed, c.op, addr + c.delta, bytes.length)));
    return w[i]!;
  };
  const matches = (src: ObservedSource | DecodeCandidate, i: number): boolean =>
    src === 'zero' ? bytes[i] === 0 : src === 'unknown' ? false : bytes[i] === patternAt(src, i);
  const all: Array<'zero' | DecodeCandidate> = ['zero', ...candidates];
  const longest = (i: number): [ObservedSource, number] => {
    let best: ObservedSource = 'unknown';
    let bestLen = 0;
    for (const c of all) {
      if (c !== 'zero' && c.home && (addr + i < c.home[0] || addr + i >= c.home[1])) continue;
      let n = 0;
      while (i + n < bytes.length && n < 8 && matches(c, i + n)) n++;
      if (n > bestLen) {
        best = c === 'zero' ? 'zero' : { op: c.op, delta: c.delta };
        bestLen = n;
      }
    }
    return [best, bestLen];
  };
  const out: DecodedExtent[] = [];
  let cur: ObservedSource | 'none' = 'none';
  for (let i = 0; i < bytes.length; i++) {
    if (cur !== 'none' && cur !== 'unknown' && matches(cur, i)) {
      extend(out, cur, i);
      continue;
    }
    if (cur === 'unknown') {
      const [best, len] = (addr + i) % 16 === 0 ? longest(i) : (['unknown', 0] as [ObservedSource, number]);
      if (best === 'unknown' || len < Math.min(4, bytes.length - i)) {
        extend(out, 'unknown', i);
        continue;
      }
      const u = out[out.length - 1]!;
      let k = 0;
      while (k < 15 && k < u.length - 1 && matches(best, i - k - 1)) k++;
      if (k) {
        u.length -= k;
        out.push({ offset: i - k, length: k, src: best });
      }
      cur = best;
      extend(out, cur, i);
      continue;
    }
    const [best, len] = longest(i);
    cur = len > 0 ? best : 'unknown';
    extend(out, cur, i);
  }
  return out;
}

function sameSource(a: ObservedSource, b: ObservedSource): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.op === b.op && a.delta === b.delta;
}

function extend(out: DecodedExtent[], src: ObservedSource, i: number): void {
  const last = out[out.length - 1];
  if (last && last.offset + last.length === i && sameSource(last.src, src)) last.length++;
  else out.push({ offset: i, length: 1, src });
}
