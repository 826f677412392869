/**
 * decodeBytes (model/pattern.ts) with the executor's one rule for garbage
 * (worker/executor/decode.c): after an 'unknown' byte, candidates are tried
 * again only at addresses that are multiples of 16, must match at least
 * min(4, remaining) bytes there, and an accepted run is extended backwards
 * over the unknown bytes it explains. A candidate with a home is tried at
 * a run start only when the address is inside it. The C decoder must equal
 * this exactly.
 */
import { type DecodedExtent, type ObservedSource, patternBytes } from '../../model/pattern.ts';

/** home: where the candidate's bytes can be; it is tried only at addresses inside (the executor's index). */
export type Cand = { op: number; delta: number; home?: [number, number] };

export function decodeMirror(seed: number, bytes: Uint8Array, addr: number, candidates: Cand[]): DecodedExtent[] {
  const windows = new Map<string, Uint8Array>();
  const patternAt = (c: Cand, i: number) => {
    // One window per candidate: the reference recomputes per byte, which is slow for long arrays.
    const k = `${c.op}/${c.delta}`;
    let w = windows.get(k);
    if (!w) windows.set(k, (w = patternBytes(seed, c.op, addr + c.delta, bytes.length)));
    return w[i]!;
  };
  const matches = (src: ObservedSource, i: number) =>
    src === 'zero' ? bytes[i] === 0 : src === 'unknown' ? false : bytes[i] === patternAt(src, i);
  const all: Array<'zero' | Cand> = ['zero', ...candidates];
  const longest = (i: number): [ObservedSource, number] => {
    let best: ObservedSource = 'unknown';
    let bestLen = 0;
    for (const c of all) {
      if (c !== 'zero' && c.home && (addr + i < c.home[0] || addr + i >= c.home[1])) continue;
      let n = 0;
      while (i + n < bytes.length && n < 8 && matches(c, i + n)) n++;
      if (n > bestLen) {
        best = c;
        bestLen = n;
      }
    }
    return [best, bestLen];
  };
  const out: DecodedExtent[] = [];
  const extend = (src: ObservedSource, i: number) => {
    const last = out[out.length - 1];
    const same = last && (typeof last.src === 'string' || typeof src === 'string' ? last.src === src : last.src.op === src.op && last.src.delta === src.delta);
    if (last && same && last.offset + last.length === i) last.length++;
    else out.push({ offset: i, length: 1, src });
  };
  let cur: ObservedSource | 'none' = 'none';
  for (let i = 0; i < bytes.length; i++) {
    if (cur !== 'none' && cur !== 'unknown' && matches(cur, i)) {
      extend(cur, i);
      continue;
    }
    if (cur === 'unknown') {
      const [best, len] = (addr + i) % 16 === 0 ? longest(i) : ['unknown' as const, 0];
      if (best === 'unknown' || len < Math.min(4, bytes.length - i)) {
        extend('unknown', i);
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
      extend(cur, i);
      continue;
    }
    const [best, len] = longest(i);
    cur = len > 0 ? best : 'unknown';
    extend(cur, i);
  }
  return out;
}
