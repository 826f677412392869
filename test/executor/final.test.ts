/**
 * Final reads: whole files by default, the given ranges otherwise, decoded
 * in 1 MiB chunks as one stream per range (checked byte-exact against the
 * TS mirror of the decoder on content that straddles chunk boundaries),
 * 'error' runs for what cannot be read, and whole devices when no ranges
 * are given.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternBytes } from '../../model/pattern.ts';
import { type Cand, decodeMirror } from './decode-mirror.ts';
import { cleanup, compact, dump, finals, io, loopDevice, noBinary, noRoot, plan, runPlan, sparseFile, tempDir } from './harness.ts';

const MiB = 1 << 20;
const SEED = 777;
let dir: string;

beforeAll(async () => {
  dir = await tempDir('final');
});
afterAll(async () => {
  await cleanup(dir);
});

/** Patterns, zeroes and noise, with boundaries placed right at and around the 1 MiB chunk edges. */
function content(candidates: Cand[]): Uint8Array {
  const size = 2 * MiB + 12345;
  const out = new Uint8Array(size);
  let x = 0x1234567;
  const noise = (s: number, e: number) => {
    for (let i = s; i < e; i++) out[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  };
  const put = (c: Cand, s: number, e: number) => out.set(patternBytes(SEED, c.op, s + c.delta, e - s), s);
  const [a, b, c] = candidates as [Cand, Cand, Cand];
  put(a, 0, MiB - 3); // ends 3 bytes before a chunk edge
  noise(MiB - 3, MiB + 5); // garbage across the edge
  put(b, MiB + 5, MiB + 70000); // starts right after garbage, off the 16-byte grid
  // zeroes up to ...
  put(c, MiB + 80000, 2 * MiB - 2); // ends 2 bytes before the next edge; 2 bytes of zero across it
  put(a, 2 * MiB, 2 * MiB + 3); // a 3-byte write
  noise(2 * MiB + 3, 2 * MiB + 1000);
  put(b, 2 * MiB + 1000, size);
  return out;
}

describe.skipIf(noBinary)('final reads', () => {
  const candidates: Cand[] = [
    { op: 3, delta: 0 },
    { op: 5, delta: 512 },
    { op: 9, delta: -4096 },
  ];

  it('decodes a whole file in chunks exactly as the decoder does in one piece', async () => {
    const f = path.join(dir, 'whole');
    const bytes = content(candidates);
    await writeFile(f, bytes);
    const out = await runPlan(plan({ seed: SEED, candidates, final: [{ id: 'f', path: f, kind: 'file' }] }));
    expect(out.code, dump(out)).toBe(0);
    const fin = finals(out).get('f')!;
    expect(fin.size).toBe(bytes.length);
    expect(fin.ranges).toEqual([[0, bytes.length]]);
    expect(compact(fin.extents)).toEqual(compact(decodeMirror(SEED, bytes, 0, candidates)));
    // The run after the garbage at the chunk edge is found from its first byte, as is the 3-byte write.
    expect(compact(fin.extents)).toContain(`${MiB + 5}+${70000 - 5} op5@512`);
    expect(compact(fin.extents)).toContain(`${2 * MiB}+3 op3`);
  });

  it('reads only the given ranges, each decoded from its own start', async () => {
    const f = path.join(dir, 'ranges');
    const bytes = content(candidates);
    await writeFile(f, bytes);
    const ranges: Array<[number, number]> = [
      [100, 5000],
      [MiB - 10, MiB + 100],
      [2 * MiB + 1, 2 * MiB + 2000],
    ];
    const out = await runPlan(plan({ seed: SEED, candidates, final: [{ id: 'f', path: f, kind: 'file', ranges }] }));
    expect(out.code, dump(out)).toBe(0);
    const fin = finals(out).get('f')!;
    expect(fin.ranges).toEqual(ranges);
    const want = ranges.flatMap(([s, e]) => decodeMirror(SEED, bytes.subarray(s, e), s, candidates).map((x) => ({ ...x, offset: x.offset + s })));
    expect(compact(fin.extents)).toEqual(compact(want));
  });

  it("turns what cannot be read into 'error' runs and a missing file into no content", async () => {
    const out = await runPlan(
      plan({
        final: [
          { id: 'dir', path: dir, kind: 'file' }, // a directory: open works, read says EISDIR
          { id: 'missing', path: path.join(dir, 'nope'), kind: 'file' },
          { id: 'missing-dev', path: path.join(dir, 'nope-dev'), kind: 'block', ranges: [[0, 4096]] },
        ],
      }),
    );
    expect(out.code, dump(out)).toBe(0);
    const d = finals(out).get('dir')!;
    expect(d.size).toBeGreaterThan(0);
    expect(d.extents).toEqual([{ offset: 0, length: d.size, src: 'error' }]);
    expect(finals(out).get('missing')).toMatchObject({ size: 0, extents: [], ranges: [] });
    expect(finals(out).get('missing-dev')).toMatchObject({ size: 0, extents: [{ offset: 0, length: 4096, src: 'error' }], ranges: [[0, 4096]] });
  });

  it.skipIf(noRoot)('reads a whole block device when no ranges are given, after dropping caches', async () => {
    const f = path.join(dir, 'dev.img');
    const out = await runPlan(
      plan({
        seed: SEED,
        setup: [sparseFile('file', f, '3M'), loopDevice('l0', f)],
        threads: [[io(3, 'write', '${l0}', MiB - 512, 1024), io(9, 'write', '${l0}', 3 * MiB - 4096, 4096, { direct: true })]],
        candidates: [...candidates, { op: 9, delta: 0 }],
        final: [{ id: 'l0', path: '${l0}', kind: 'block' }],
      }),
    );
    expect(out.code, dump(out)).toBe(0);
    const fin = finals(out).get('l0')!;
    expect(fin.size).toBe(3 * MiB);
    expect(fin.ranges).toEqual([[0, 3 * MiB]]);
    expect(compact(fin.extents)).toEqual([`0+${MiB - 512} zero`, `${MiB - 512}+1024 op3`, `${MiB + 512}+${2 * MiB - 4096 - 512} zero`, `${3 * MiB - 4096}+4096 op9`]);
  });
});
