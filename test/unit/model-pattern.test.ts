/**
 * The data pattern and its decoder. The pattern is shared with the C
 * executor, so its values are pinned here (golden vectors), and checked
 * against an independent BigInt implementation of the documented
 * construction (a chain of murmur3 fmix32 over seed, op id and word index).
 * decodeBytes must attribute every byte to an op whose pattern it equals, and
 * whatever it attributes a correct read to, the oracle must pass it.
 */
import { describe, expect, it } from 'vitest';
import { decodeBytes, patternByte, patternBytes } from '../../model/index.ts';
import { diskCase, fileCase, judge, observe, read, runs, withResult, write } from '../helpers/cases.ts';

/** fmix32 in BigInt arithmetic: an implementation independent of Math.imul. */
function fmix32Big(h: bigint): bigint {
  const M = 0xffffffffn;
  h &= M;
  h ^= h >> 16n;
  h = (h * 0x85ebca6bn) & M;
  h ^= h >> 13n;
  h = (h * 0xc2b2ae35n) & M;
  h ^= h >> 16n;
  return h;
}

function refByte(seed: number, op: number, addr: number): number {
  const word = BigInt(Math.floor(addr / 4));
  const lo = word & 0xffffffffn;
  const hi = (word >> 32n) & 0xffffffffn;
  let h = fmix32Big(BigInt(seed) ^ 0x9e3779b9n);
  h = fmix32Big(h ^ BigInt(op));
  h = fmix32Big(h ^ lo);
  h = fmix32Big(h ^ hi ^ 0x5bd1e995n);
  const b = Number((h >> BigInt((addr % 4) * 8)) & 0xffn);
  return b === 0 ? 0xa5 : b;
}

describe('patternByte golden values (shared with the C executor)', () => {
  // [seed, op, addr, byte]
  const GOLDEN: Array<[number, number, number, number]> = [
    [0, 1, 0, 107],
    [0, 1, 1, 3],
    [0, 1, 2, 32],
    [0, 1, 3, 55],
    [0, 1, 4, 243],
    [1, 1, 0, 149],
    [12345, 7, 4096, 107],
    [42, 3, 1048575, 255],
    [7, 1, 5_000_000_000, 108], // an address above 2^32: the high word enters the hash
    [0xffffffff, 2 ** 31 - 1, 2 ** 40 + 3, 63], // largest seed and op id
    [5, 9, 337, 0xa5], // the hash byte is 0 here: the pattern substitutes 0xa5
  ];
  it.each(GOLDEN)('patternByte(%i, %i, %i) = %i', (seed, op, addr, byte) => {
    expect(patternByte(seed, op, addr)).toBe(byte);
  });

  it('matches an independent implementation of the documented construction', () => {
    for (const [seed, op, addr] of GOLDEN) expect(patternByte(seed, op, addr)).toBe(refByte(seed, op, addr));
    for (let i = 0; i < 2000; i++) {
      const seed = (i * 2654435761) >>> 0;
      const op = 1 + (i % 97);
      const addr = i * 7919 + (i % 5) * 2 ** 33;
      expect(patternByte(seed, op, addr)).toBe(refByte(seed, op, addr));
    }
  });

  it('patternBytes is patternByte over a range (hex golden vectors)', () => {
    expect(Buffer.from(patternBytes(12345, 1, 0, 16)).toString('hex')).toBe('07a442f6d536dc5d7d48021d78bbbb17');
    expect(Buffer.from(patternBytes(1, 2, 4094, 8)).toString('hex')).toBe('a9823d6fe8aa335c');
  });

  it('never produces a zero byte, so zeroes always mean "no op wrote this"', () => {
    for (let a = 0; a < 1 << 16; a++) expect(patternByte(5, 9, a)).not.toBe(0);
  });

  it('depends on seed, op and address', () => {
    const a = patternBytes(1, 1, 0, 64);
    expect(patternBytes(2, 1, 0, 64)).not.toEqual(a);
    expect(patternBytes(1, 2, 0, 64)).not.toEqual(a);
    expect(patternBytes(1, 1, 64, 64)).not.toEqual(a);
    // The same (seed, op, address) gives the same byte however the range is cut.
    expect(patternBytes(1, 1, 10, 20)).toEqual(a.slice(10, 30));
  });
});

/**
 * The decoder's contract: runs tile the buffer; zero runs are zeroes; op runs
 * equal that op's pattern; an unknown run starts with a byte that no
 * candidate explains (inside garbage the decoder resyncs only at multiples
 * of 16, so later bytes of the run may match a candidate by chance).
 */
function checkDecoding(seed: number, bytes: Uint8Array, addr: number, cands: Array<{ op: number; delta: number }>, out: ReturnType<typeof decodeBytes>): void {
  let at = 0;
  for (const r of out) {
    expect(r.offset).toBe(at);
    expect(r.length).toBeGreaterThan(0);
    for (let i = r.offset; i < r.offset + r.length; i++) {
      const b = bytes[i]!;
      if (r.src === 'zero') expect(b).toBe(0);
      else if (r.src === 'unknown') {
        if (i === r.offset) {
          expect(b).not.toBe(0);
          for (const cd of cands) expect(patternByte(seed, cd.op, addr + i + cd.delta)).not.toBe(b);
        }
      } else if (typeof r.src === 'object') expect(patternByte(seed, r.src.op, addr + i + r.src.delta)).toBe(b);
    }
    at += r.length;
  }
  expect(at).toBe(bytes.length);
}

describe('decodeBytes', () => {
  const seed = 12345;
  const c = (op: number, delta = 0) => ({ op, delta });

  it('attributes a whole buffer of one op', () => {
    const bytes = patternBytes(seed, 3, 8192, 4096);
    expect(decodeBytes(seed, bytes, 8192, [c(1), c(3)])).toEqual([{ offset: 0, length: 4096, src: c(3) }]);
  });

  it('finds zero runs and op runs in order', () => {
    const bytes = new Uint8Array(3000);
    bytes.set(patternBytes(seed, 1, 100, 1000), 0);
    bytes.set(patternBytes(seed, 2, 2100, 1000), 2000);
    expect(decodeBytes(seed, bytes, 100, [c(1), c(2)])).toEqual([
      { offset: 0, length: 1000, src: c(1) },
      { offset: 1000, length: 1000, src: 'zero' },
      { offset: 2000, length: 1000, src: c(2) },
    ]);
  });

  it('recognises data moved by `delta` (collapse, insert, mmap buffers)', () => {
    // Op 4 wrote at 8192..12288; after a collapse of 4096 bytes at 0 it sits at 4096..8192: delta +4096.
    const bytes = patternBytes(seed, 4, 8192, 4096);
    expect(decodeBytes(seed, bytes, 4096, [c(4), c(4, 4096)])).toEqual([{ offset: 0, length: 4096, src: c(4, 4096) }]);
    // Without the right delta the bytes are mostly unexplained; what is attributed is attributed by value.
    const wrong = decodeBytes(seed, bytes, 4096, [c(4)]);
    checkDecoding(seed, bytes, 4096, [c(4)], wrong);
    const unknown = wrong.filter((r) => r.src === 'unknown').reduce((n, r) => n + r.length, 0);
    expect(unknown).toBeGreaterThan(4096 * 0.9);
  });

  it('keeps its invariant on random mixtures: runs tile the buffer, each byte equals what its run claims', () => {
    let x = 99;
    const rnd = (n: number) => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x % n;
    };
    for (let round = 0; round < 200; round++) {
      const len = 1 + rnd(600);
      const addr = rnd(1 << 20);
      const bytes = new Uint8Array(len);
      for (let at = 0; at < len; ) {
        const piece = Math.min(len - at, 1 + rnd(40));
        const kind = rnd(4);
        if (kind === 0) bytes.fill(0, at, at + piece);
        else if (kind === 3) for (let i = 0; i < piece; i++) bytes[at + i] = 1 + rnd(255);
        else bytes.set(patternBytes(seed, kind, addr + at, piece), at);
        at += piece;
      }
      const cands = [c(1), c(2)];
      checkDecoding(seed, bytes, addr, cands, decodeBytes(seed, bytes, addr, cands));
    }
  });

  it('reports bytes no candidate explains as unknown', () => {
    const bytes = new Uint8Array(64);
    bytes.set(patternBytes(seed, 9, 0, 64)); // op 9 is not a candidate
    expect(decodeBytes(seed, bytes, 0, [c(1), c(2)])).toEqual([{ offset: 0, length: 64, src: 'unknown' }]);
  });

  it('attributes a sliver of fewer than 4 bytes left by an overlapping write to its op', () => {
    // File: op 1 wrote [0,100), op 2 then wrote [3,203): bytes 0..2 are still op 1's.
    const bytes = new Uint8Array(203);
    bytes.set(patternBytes(seed, 1, 0, 100), 0);
    bytes.set(patternBytes(seed, 2, 3, 200), 3);
    expect(decodeBytes(seed, bytes, 0, [c(1), c(2)])).toEqual([
      { offset: 0, length: 3, src: c(1) },
      { offset: 3, length: 200, src: c(2) },
    ]);
  });

  it('attributes a 1-byte write between two others', () => {
    const bytes = new Uint8Array(9);
    bytes.set(patternBytes(seed, 1, 0, 4), 0);
    bytes.set(patternBytes(seed, 2, 4, 1), 4);
    bytes.set(patternBytes(seed, 3, 5, 4), 5);
    const out = decodeBytes(seed, bytes, 0, [c(1), c(2), c(3)]);
    // Every byte is attributed to an op whose pattern it equals.
    for (const r of out) {
      expect(r.src).not.toBe('unknown');
      for (let i = r.offset; i < r.offset + r.length; i++) {
        const s = r.src as { op: number; delta: number };
        expect(patternByte(seed, s.op, i + s.delta)).toBe(bytes[i]);
      }
    }
  });
});

describe('decoded reads are judged by their bytes', () => {
  /** A seed where op 2's byte at `at` happens to equal op 1's byte there. */
  function coincidentSeed(at: number): number {
    for (let s = 0; ; s++) if (patternByte(s, 2, at) === patternByte(s, 1, at)) return s;
  }

  it('a correct read whose boundary byte also matches the previous op passes', () => {
    const seed = coincidentSeed(512);
    const b = diskCase([write(1, 'd', 0, 512), write(2, 'd', 512, 512), read(3, 'd', 0, 1024)], { seed });
    // Independent bytes of what a correct disk returns: op 1 at [0,512), op 2 at [512,1024).
    const bytes = new Uint8Array(1024);
    bytes.set(patternBytes(seed, 1, 0, 512), 0);
    bytes.set(patternBytes(seed, 2, 512, 512), 512);
    const data = decodeBytes(seed, bytes, 0, [{ op: 1, delta: 0 }, { op: 2, delta: 0 }]);
    const obs = withResult(observe(b), 3, { ret: 1024, data });
    expect(judge(b, obs).verdict).toBe('pass');
  });

  it('a file read of [op 1 | op 2] passes whatever way the decoder splits a coincident byte', () => {
    const seed = coincidentSeed(100);
    // op 1 writes [0,100), op 2 writes [100,200) of a file; byte 100 is ambiguous.
    const b = fileCase('ext4', [write(1, 'f', 0, 100), write(2, 'f', 100, 100), read(3, 'f', 0, 200)], { seed });
    const bytes = new Uint8Array(200);
    bytes.set(patternBytes(seed, 1, 0, 100), 0);
    bytes.set(patternBytes(seed, 2, 100, 100), 100);
    const data = decodeBytes(seed, bytes, 0, [{ op: 1, delta: 0 }, { op: 2, delta: 0 }]);
    expect(judge(b, withResult(observe(b), 3, { ret: 200, data })).verdict).toBe('pass');
    // The same ambiguity, spelled out: a run of op 1 that covers byte 100.
    const spelled = runs(0, [101, 1], [99, 2]);
    expect(judge(b, withResult(observe(b), 3, { ret: 200, data: spelled })).verdict).toBe('pass');
    // But op 1's run reaching byte 101, which differs from op 2's byte there, is wrong data.
    if (patternByte(seed, 1, 101) !== patternByte(seed, 2, 101)) {
      const wrong = runs(0, [102, 1], [98, 2]);
      const a = judge(b, withResult(observe(b), 3, { ret: 200, data: wrong }));
      expect(a.verdict).toBe('divergence');
      if (a.verdict === 'divergence') expect(a.divergences[0]).toMatchObject({ class: 'wrong-data', op: 3, offset: 101 });
    }
  });

  it('a file read with a 3-byte sliver of an older write passes once decoded', () => {
    const seed = 777;
    const b = fileCase('ext4', [write(1, 'f', 0, 100), write(2, 'f', 3, 200), read(3, 'f', 0, 203)], { seed });
    const bytes = new Uint8Array(203);
    bytes.set(patternBytes(seed, 1, 0, 100), 0);
    bytes.set(patternBytes(seed, 2, 3, 200), 3);
    const data = decodeBytes(seed, bytes, 0, [{ op: 1, delta: 0 }, { op: 2, delta: 0 }]);
    expect(judge(b, withResult(observe(b), 3, { ret: 203, data })).verdict).toBe('pass');
  });
});
