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

/**
 * Turn raw bytes read from address `addr` into runs attributed to a writer.
 * `candidates` are the (op, delta) pairs to try: byte i matches (op, delta)
 * when it equals patternByte(seed, op, addr + i + delta). The reference
 * implementation of what the executor does in C; greedy, preferring to
 * continue the current run. A byte is 'unknown' exactly when it is not zero
 * and matches no candidate.
 */
export function decodeBytes(
  seed: number,
  bytes: Uint8Array,
  addr: number,
  candidates: ReadonlyArray<{ op: number; delta: number }>,
): DecodedExtent[] {
  const out: DecodedExtent[] = [];
  const matches = (src: ObservedSource, i: number): boolean => {
    const b = bytes[i]!;
    if (src === 'zero') return b === 0;
    if (src === 'unknown') return false;
    return b === patternByte(seed, src.op, addr + i + src.delta);
  };
  const runLength = (src: ObservedSource, i: number, limit: number): number => {
    let n = 0;
    while (i + n < bytes.length && n < limit && matches(src, i + n)) n++;
    return n;
  };
  const all: ObservedSource[] = ['zero', ...candidates];
  let i = 0;
  let cur: ObservedSource = 'unknown';
  while (i < bytes.length) {
    if (cur !== 'unknown' && matches(cur, i)) {
      extend(out, cur, i);
      i++;
      continue;
    }
    // Pick the candidate with the longest run from here (8 bytes decide; ties keep list order).
    let best: ObservedSource = 'unknown';
    let bestLen = 0;
    for (const c of all) {
      const n = runLength(c, i, 8);
      if (n > bestLen) {
        best = c;
        bestLen = n;
      }
    }
    // Every byte that equals some candidate's pattern is attributed to one: a
    // write of 1-3 bytes, or a sliver an overlapping write left, is real data
    // (calling it noise made the oracle reject correct reads). A chance match
    // inside garbage gets a short run; the comparator judges runs by the byte
    // values they stand for, so that is harmless.
    cur = best;
    extend(out, cur, i);
    i++;
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
