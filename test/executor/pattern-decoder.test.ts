/**
 * The C pattern and decoder against the TS reference (model/pattern.ts).
 *
 * The pattern must be bit-exact, and the decoder (worker/executor/decode.c)
 * must give exactly the runs of decodeBytes (model/pattern.ts, which states
 * the rules, including the one for garbage) on any input, with or without
 * homes for the candidates.
 */
import { describe, expect, it } from 'vitest';
import { type DecodedExtent, decodeBytes, patternBytes } from '../../model/pattern.ts';
import type { DecodedRun } from '../../worker/executor/protocol.ts';
import { type Cand, decodeMirror } from './decode-mirror.ts';
import { noBinary, queryTool } from './harness.ts';
import { mulberry32 as rng } from '../../infra/random.ts';

interface Sample {
  seed: number;
  addr: number;
  bytes: Uint8Array;
  candidates: Cand[];
}

/**
 * Bytes made of segments: several ops' patterns, zeroes, and (noisy) random
 * bytes and patterns at deltas the candidates do not know.
 */
function sample(caseSeed: number, noisy: boolean, at?: (len: number, r: () => number) => number): Sample {
  const r = rng(caseSeed);
  const int = (n: number) => Math.floor(r() * n);
  const seed = int(2 ** 32);
  const addrs = [0, 512 * int(1000), int(2 ** 40), 2 ** 32 - 7 - int(100), int(4096)];
  const pickedAddr = addrs[int(addrs.length)]!;
  const ops = [1 + int(50), 100 + int(50), 2 ** 31 - 1];
  const deltas = [0, 512, -4096];
  const candidates: Cand[] = [];
  for (const op of ops) for (const delta of deltas) if (r() < 0.8) candidates.push({ op, delta });
  if (!noisy && candidates.length === 0) candidates.push({ op: ops[0]!, delta: 0 });
  const parts: number[] = [];
  const total = 1 + int(3000);
  const addr = at ? at(total, r) : pickedAddr;
  while (parts.length < total) {
    const pos = parts.length;
    const kind = r();
    // Short segments too: 1-3 byte writes and slivers must be found.
    const len = r() < 0.15 ? 1 + int(3) : 1 + int(kind < 0.6 ? 700 : 120);
    if (kind < 0.6) {
      const known = noisy ? r() < 0.85 : true;
      const c = candidates[int(candidates.length)]!;
      const src = known ? c : { op: ops[int(ops.length)]!, delta: 8 * (1 + int(100)) };
      parts.push(...patternBytes(seed, src.op, addr + pos + src.delta, len));
    } else if (kind < 0.8 || !noisy) {
      parts.push(...new Array<number>(len).fill(0));
    } else {
      for (let k = 0; k < len; k++) parts.push(int(256));
    }
  }
  return { seed, addr, bytes: Uint8Array.from(parts.slice(0, total)), candidates };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function norm(runs: Array<DecodedRun | DecodedExtent>): string[] {
  return runs.map((x) => `${x.offset}+${x.length}:${typeof x.src === 'string' ? x.src : `${x.src.op}@${x.src.delta}`}`);
}

async function decodeInC(samples: Sample[], chunk?: number): Promise<DecodedRun[][]> {
  const answers = await queryTool<object, { runs: DecodedRun[] }>(
    '--decode',
    samples.map((s) => ({ seed: s.seed, addr: s.addr, candidates: s.candidates, hex: hex(s.bytes), ...(chunk ? { chunk } : {}) })),
  );
  return answers.map((a) => a.runs);
}

describe.skipIf(noBinary)('pattern (C) equals model/pattern.ts', () => {
  it('matches patternBytes on golden (seed, op, addr) sets, including addresses past 2^32 and 2^40', async () => {
    const seeds = [0, 1, 12345, 0x9e3779b9, 2 ** 32 - 1];
    const ops = [1, 2, 77, 1000, 2 ** 31 - 1];
    const addrs = [0, 1, 3, 4095, 4096, 2 ** 32 - 2, 2 ** 32 + 3, 2 ** 33 + 5, 2 ** 40 + 1, 2 ** 53 - 64];
    const queries = seeds.flatMap((seed) => ops.flatMap((op) => addrs.map((addr) => ({ seed, op, addr, len: 37 }))));
    const answers = await queryTool<(typeof queries)[number], { hex: string }>('--pattern', queries);
    expect(answers).toHaveLength(queries.length);
    queries.forEach((q, k) => expect(answers[k]!.hex, JSON.stringify(q)).toBe(hex(patternBytes(q.seed, q.op, q.addr, q.len))));
  });

  it('never produces a zero byte', async () => {
    const [a] = await queryTool<object, { hex: string }>('--pattern', [{ seed: 3, op: 9, addr: 0, len: 1 << 16 }]);
    expect(Buffer.from(a!.hex, 'hex').includes(0)).toBe(false);
  });
});

describe.skipIf(noBinary)('decoder (C) against decodeBytes', () => {
  const N = 300;

  it('is identical to decodeBytes-with-the-garbage-rule on random mixes of patterns, zeroes and noise', async () => {
    const samples = Array.from({ length: N }, (_, k) => sample(1000 + k, true));
    const got = await decodeInC(samples);
    samples.forEach((s, k) => expect(norm(got[k]!), `case ${1000 + k}`).toEqual(norm(decodeMirror(s.seed, s.bytes, s.addr, s.candidates))));
  });

  it('is identical to decodeBytes on bytes without garbage (patterns of known candidates and zeroes, runs of 1-3 bytes included)', async () => {
    const samples = Array.from({ length: N }, (_, k) => sample(5000 + k, false));
    const got = await decodeInC(samples);
    samples.forEach((s, k) => expect(norm(got[k]!), `case ${5000 + k}`).toEqual(norm(decodeBytes(s.seed, s.bytes, s.addr, s.candidates))));
  });

  it('with garbage: is identical to decodeBytes, and every byte it attributes has that value', async () => {
    const samples = Array.from({ length: N }, (_, k) => sample(9000 + k, true));
    const got = await decodeInC(samples);
    samples.forEach((s, k) => {
      expect(norm(got[k]!), `case ${9000 + k}`).toEqual(norm(decodeBytes(s.seed, s.bytes, s.addr, s.candidates)));
      const c = perByte(got[k]!, s.bytes.length);
      for (let i = 0; i < s.bytes.length; i++) {
        const src = c[i]!;
        if (src === 'unknown') continue;
        const want = src === 'zero' ? 0 : patternBytes(s.seed, Number(src.split('@')[0]), s.addr + i + Number(src.split('@')[1]), 1)[0];
        expect(s.bytes[i], `case ${9000 + k} byte ${i}: C says ${src}`).toBe(want);
      }
    });
  });

  it('tries a candidate with a home only inside it (the index of plan runs), across 64 KiB buckets', async () => {
    const samples = Array.from({ length: 200 }, (_, k) => {
      // Straddle a 64 KiB bucket boundary, and give homes of every shape: none, narrow, huge, elsewhere.
      const s = sample(30000 + k, true, (len, r) => 65536 * (1 + Math.floor(r() * 100)) - Math.floor(r() * len));
      const r = rng(k);
      const addr = s.addr;
      const candidates = s.candidates.map((c) => {
        const x = r();
        if (x < 0.2) return c;
        if (x < 0.3) return { ...c, home: [0, 2 ** 40] as [number, number] };
        if (x < 0.4) return { ...c, home: [addr + 10 ** 6, addr + 10 ** 6 + 4096] as [number, number] };
        const a = addr + Math.floor(r() * s.bytes.length) - 50;
        return { ...c, home: [a, a + Math.floor(r() * s.bytes.length)] as [number, number] };
      });
      return { ...s, candidates };
    });
    const got = await decodeInC(samples);
    samples.forEach((s, k) => expect(norm(got[k]!), `case ${30000 + k}`).toEqual(norm(decodeMirror(s.seed, s.bytes, s.addr, s.candidates))));
  });

  it('gives the same runs when fed in chunks (as final reads do) as in one piece', async () => {
    const samples = Array.from({ length: 100 }, (_, k) => sample(20000 + k, true));
    const whole = await decodeInC(samples);
    for (const chunk of [7, 64, 1000]) {
      const chunked = await decodeInC(samples, chunk);
      samples.forEach((_, k) => expect(norm(chunked[k]!), `case ${20000 + k} chunk ${chunk}`).toEqual(norm(whole[k]!)));
    }
  });

  it('attributes moved data to (op, delta) and reports a hex sample of unknown bytes', async () => {
    const seed = 42;
    const noise = Uint8Array.from([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x10, 0x20, 0x30]);
    const bytes = Uint8Array.from([...patternBytes(seed, 5, 4096 + 512, 100), ...new Array(12).fill(0), ...noise]);
    const [runs] = await decodeInC([{ seed, addr: 4096, bytes, candidates: [{ op: 5, delta: 0 }, { op: 5, delta: 512 }] }]);
    expect(runs).toEqual([
      { offset: 0, length: 100, src: { op: 5, delta: 512 } },
      { offset: 100, length: 12, src: 'zero' },
      { offset: 112, length: 18, src: 'unknown', sample: hex(noise.subarray(0, 16)) },
    ]);
  });
});

function perByte(runs: Array<DecodedRun | DecodedExtent>, n: number): string[] {
  const out = new Array<string>(n).fill('none');
  for (const r of runs) for (let i = r.offset; i < r.offset + r.length; i++) out[i] = typeof r.src === 'string' ? r.src : `${r.src.op}@${r.src.delta}`;
  return out;
}
