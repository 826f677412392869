/**
 * The executor's ops on regular files in a temporary directory, run through
 * the real binary: every submission path, O_DIRECT, RWF_NOWAIT, vectors,
 * buffer placements, shared mappings (with SIGBUS past EOF), writeback ops,
 * corrupt, exec, barriers, sleep and the set-up step plumbing.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { patternBytes } from '../../model/pattern.ts';
import type { PlanOp } from '../../worker/executor/protocol.ts';
import { cleanup, compact, done, dump, eventsOf, finals, io, noBinary, noRoot, plan, result, results, runPlan, sparseFile, tempDir } from './harness.ts';

let dir: string;
beforeAll(async () => {
  dir = await tempDir('file');
});
afterAll(async () => {
  await cleanup(dir);
});

describe.skipIf(noBinary)('read and write', () => {
  it('round-trips through psync, pvec and io_uring, buffered and O_DIRECT, with 1-4 iovecs and dsync', async () => {
    const f = path.join(dir, 'paths');
    const ops: PlanOp[] = [];
    const expected: Array<{ w: number; r: number; len: number }> = [];
    let id = 1;
    let k = 0;
    for (const via of ['psync', 'pvec', 'io_uring'] as const)
      for (const direct of [false, true])
        for (const vectors of via === 'psync' ? [1] : [1, 3, 4]) {
          // O_DIRECT: page-aligned offset and lengths; buffered: odd ones on purpose.
          const offset = k * 65536 + (direct ? 0 : 7);
          const len = direct ? 4096 * vectors * 2 : 5001;
          const w = id++;
          const r = id++;
          ops.push(io(w, 'write', f, offset, len, { via, direct, vectors, dsync: k % 2 === 0 }));
          ops.push(io(r, 'read', f, offset, len, { via, direct, vectors }));
          expected.push({ w, r, len });
          k++;
        }
    const out = await runPlan(plan({ setup: [sparseFile('file', f, '0')], threads: [ops], candidates: expected.map((e) => ({ op: e.w, delta: 0 })) }));
    expect(out.code, dump(out)).toBe(0);
    for (const e of expected) {
      expect(result(out, e.w).ret, `write ${e.w}`).toBe(e.len);
      const r = result(out, e.r);
      expect(r.ret, `read ${e.r}`).toBe(e.len);
      expect(r.data).toEqual([{ offset: 0, length: e.len, src: { op: e.w, delta: 0 } }]);
      expect(r.us).toBeGreaterThanOrEqual(0);
    }
  });

  it('RWF_NOWAIT answers the full count or EAGAIN, never anything else', async () => {
    const f = path.join(dir, 'nowait');
    const ops: PlanOp[] = [
      io(1, 'write', f, 0, 65536),
      io(2, 'read', f, 0, 65536, { via: 'pvec', nowait: true }),
      io(3, 'read', f, 0, 65536, { via: 'io_uring', nowait: true, vectors: 2 }),
      io(4, 'write', f, 4096, 4096, { via: 'pvec', nowait: true }),
      io(5, 'write', f, 8192, 4096, { via: 'io_uring', nowait: true, direct: true }),
    ];
    const out = await runPlan(plan({ setup: [sparseFile('file', f, '0')], threads: [ops], candidates: [1, 4, 5].map((op) => ({ op, delta: 0 })) }));
    expect(out.code, dump(out)).toBe(0);
    for (const op of [2, 3, 4, 5]) {
      const r = result(out, op);
      if (r.ret < 0) expect(['EAGAIN', 'EOPNOTSUPP'], dump(out)).toContain(r.errno);
      else expect(r.ret, dump(out)).toBeGreaterThan(0);
    }
    for (const op of [2, 3]) {
      const r = result(out, op);
      if (r.ret > 0) expect(r.data).toEqual([{ offset: 0, length: r.ret, src: { op: 1, delta: 0 } }]);
    }
  });

  it('reports errno names: EINVAL for misaligned O_DIRECT, ENOENT for a missing file, EBADF-free reads of read-only opens', async () => {
    const f = path.join(dir, 'errs');
    const ops: PlanOp[] = [
      io(1, 'write', f, 512, 4096, { direct: true, buffer: { placement: 'heap', align: 1 } }),
      io(2, 'read', path.join(dir, 'does-not-exist'), 0, 10),
      io(3, 'read', f, 1 << 20, 100), // past EOF: 0 bytes
    ];
    const out = await runPlan(plan({ setup: [sparseFile('file', f, '64K')], threads: [ops] }));
    expect(out.code, dump(out)).toBe(0);
    expect(result(out, 1)).toMatchObject({ ret: -1, errno: 'EINVAL' });
    expect(result(out, 2)).toMatchObject({ ret: -1, errno: 'ENOENT' });
    expect(result(out, 3).ret).toBe(0);
    expect(result(out, 3).data).toBeUndefined();
  });
});

describe.skipIf(noBinary)('buffer placement', () => {
  it('anon buffers send the pattern from their touched pages and zeroes from the untouched ones', async () => {
    const f = path.join(dir, 'anon');
    const ops: PlanOp[] = [
      io(1, 'write', f, 0, 16384, { direct: true, buffer: { placement: 'anon', touchedPages: 1, align: 0 } }),
      io(2, 'write', f, 16384, 8192, { buffer: { placement: 'anon', touchedPages: 2, align: 512 } }),
      io(3, 'write', f, 32768, 4096, { via: 'io_uring', buffer: { placement: 'anon', touchedPages: 0, align: 0 } }),
      io(4, 'read', f, 0, 36864),
    ];
    const out = await runPlan(plan({ setup: [sparseFile('file', f, '0')], threads: [ops], candidates: [1, 2, 3].map((op) => ({ op, delta: 0 })) }));
    expect(out.code, dump(out)).toBe(0);
    expect([1, 2, 3].map((op) => result(out, op).ret)).toEqual([16384, 8192, 4096]);
    // op 2: a page minus the 512-byte offset plus one more page carry the pattern (7680 bytes).
    expect(compact(result(out, 4).data!)).toEqual(['0+4096 op1', '4096+12288 zero', '16384+7680 op2', '24064+12800 zero']);
  });

  it('reads land in a partially faulted anon buffer (S2) through io_uring and O_DIRECT, and decode fully', async () => {
    const f = path.join(dir, 's2');
    const ops: PlanOp[] = [
      io(1, 'write', f, 0, 4096, { direct: true }),
      { id: 2, kind: 'fsync', path: f, dataOnly: false },
      io(3, 'write', f, 4096, 4096, { direct: true }),
      { id: 4, kind: 'fsync', path: f, dataOnly: false },
      io(5, 'read', f, 0, 8192, { via: 'io_uring', direct: true, vectors: 1, buffer: { placement: 'anon', touchedPages: 1, align: 0 } }),
      io(6, 'read', f, 0, 8192, { via: 'pvec', direct: true, vectors: 2, buffer: { placement: 'anon', touchedPages: 0, align: 0 } }),
    ];
    const out = await runPlan(plan({ setup: [sparseFile('file', f, '0')], threads: [ops], candidates: [1, 3].map((op) => ({ op, delta: 0 })) }));
    expect(out.code, dump(out)).toBe(0);
    for (const op of [5, 6]) {
      expect(result(out, op).ret, dump(out)).toBe(8192);
      expect(compact(result(out, op).data!)).toEqual(['0+4096 op1', '4096+4096 op3']);
    }
  });

  it('mmap buffers carry the mapped file: writes send its bytes, reads land in it', async () => {
    const a = path.join(dir, 'buf-a');
    const b = path.join(dir, 'buf-b');
    const ops: PlanOp[] = [
      io(1, 'write', a, 0, 16384),
      // B[0, 8192) = A[4096, 12288): op 1's pattern moved by 4096.
      io(2, 'write', b, 0, 8192, { buffer: { placement: 'mmap', path: a, offset: 4096, align: 0 } }),
      io(3, 'read', b, 0, 8192),
      // A[100, 8292) = B[0, 8192): op 1's bytes from A[4096 + x - 100].
      io(4, 'read', b, 0, 8192, { buffer: { placement: 'mmap', path: a, offset: 0, align: 100 } }),
      // A[8192, 16384) = B[0, 8192) again, by O_DIRECT into a page-aligned mapping.
      io(5, 'read', b, 0, 8192, { direct: true, via: 'io_uring', buffer: { placement: 'mmap', path: a, offset: 8192, align: 0 } }),
    ];
    const candidates = [
      { op: 1, delta: 0 },
      { op: 1, delta: 4096 },
      { op: 1, delta: 3996 },
      { op: 1, delta: -4096 },
    ];
    const out = await runPlan(
      plan({ setup: [sparseFile('a', a, '0'), sparseFile('b', b, '0')], threads: [ops], candidates, final: [{ id: 'a', path: a, kind: 'file' }] }),
    );
    expect(out.code, dump(out)).toBe(0);
    expect(result(out, 2).ret).toBe(8192);
    for (const op of [3, 4, 5]) expect(result(out, op).data, dump(out)).toEqual([{ offset: 0, length: 8192, src: { op: 1, delta: 4096 } }]);
    expect(compact(finals(out).get('a')!.extents)).toEqual(['0+100 op1', '100+8092 op1@3996', '8192+8192 op1@-4096']);
  });
});

describe.skipIf(noBinary)('shared mappings', () => {
  it('mmap-write and mmap-read work below EOF, raise SIGBUS past the page that holds EOF, and msync in every mode', async () => {
    const f = path.join(dir, 'mapped');
    const ops: PlanOp[] = [
      { id: 1, kind: 'mmap-write', path: f, offset: 0, length: 8192, mapLength: 16384 },
      { id: 2, kind: 'mmap-read', path: f, offset: 0, length: 10000, mapLength: 16384 },
      { id: 3, kind: 'mmap-read', path: f, offset: 10000, length: 2288, mapLength: 16384 },
      { id: 4, kind: 'mmap-read', path: f, offset: 12288, length: 12, mapLength: 16384 },
      { id: 5, kind: 'mmap-write', path: f, offset: 12000, length: 1000, mapLength: 16384 },
      { id: 6, kind: 'msync', path: f, mode: 'sync', mapLength: 16384 },
      { id: 7, kind: 'msync', path: f, mode: 'async', mapLength: 16384 },
      { id: 8, kind: 'msync', path: f, mode: 'invalidate', mapLength: 16384 },
    ];
    const out = await runPlan(
      plan({ setup: [sparseFile('file', f, '10000')], threads: [ops], candidates: [{ op: 1, delta: 0 }, { op: 5, delta: 0 }], final: [{ id: 'f', path: f, kind: 'file' }] }),
    );
    expect(out.code, dump(out)).toBe(0);
    expect(result(out, 1).ret).toBe(8192);
    expect(compact(result(out, 2).data!)).toEqual(['0+8192 op1', '8192+1808 zero']);
    // Past EOF but inside its page: the zeroed tail.
    expect(result(out, 3)).toMatchObject({ ret: 2288, data: [{ offset: 0, length: 2288, src: 'zero' }] });
    expect(result(out, 4)).toMatchObject({ ret: -1, signal: 'SIGBUS' });
    expect(result(out, 5)).toMatchObject({ ret: -1, signal: 'SIGBUS' });
    for (const op of [6, 7, 8]) expect(result(out, op).ret).toBe(0);
    const fin = finals(out).get('f')!;
    expect(fin.size).toBe(10000);
    expect(fin.ranges).toEqual([[0, 10000]]);
    expect(compact(fin.extents)).toEqual(['0+8192 op1', '8192+1808 zero']);
  });
});

// drop-caches needs root.
describe.skipIf(noRoot)('writeback and size', () => {
  it('truncate, fsync, fdatasync, sync_file_range and drop-caches; geometry of a file', async () => {
    const f = path.join(dir, 'sizes');
    const ops: PlanOp[] = [
      io(1, 'write', f, 0, 8192),
      { id: 2, kind: 'truncate', path: f, size: 4096 },
      { id: 3, kind: 'fsync', path: f, dataOnly: false },
      { id: 4, kind: 'fsync', path: f, dataOnly: true },
      { id: 5, kind: 'sync-file-range', path: f, offset: 0, length: 0, flags: 7 },
      { id: 6, kind: 'sync-file-range', path: f, offset: 0, length: 4096, flags: 2 },
      { id: 7, kind: 'truncate', path: f, size: 65536 },
      { id: 8, kind: 'drop-caches' },
    ];
    const out = await runPlan(
      plan({
        setup: [sparseFile('file', f, '12345')],
        geometry: [{ id: 'f', path: f, kind: 'file' }],
        threads: [ops],
        candidates: [{ op: 1, delta: 0 }],
        final: [{ id: 'f', path: f, kind: 'file' }],
      }),
    );
    expect(out.code, dump(out)).toBe(0);
    for (const op of [2, 3, 4, 5, 6, 7, 8]) expect(result(out, op), dump(out)).toMatchObject({ ret: 0 });
    const [g] = eventsOf(out, 'geometry');
    expect(g).toMatchObject({ id: 'f', size: 12345, logicalBlockSize: 4096, physicalBlockSize: 4096 });
    expect(g!.dioOffsetAlign).toBeGreaterThan(0); // ext4 under /tmp does direct IO
    expect(g!.directIo).toBeUndefined();
    const fin = finals(out).get('f')!;
    expect(fin.size).toBe(65536);
    expect(compact(fin.extents)).toEqual(['0+4096 op1', '4096+61440 zero']);
  });
});

describe.skipIf(noBinary)('corrupt', () => {
  it('overwrites with noise (O_DIRECT when aligned, buffered otherwise) that decodes as unknown with a sample', async () => {
    const f = path.join(dir, 'corrupt');
    const ops: PlanOp[] = [
      io(1, 'write', f, 0, 65536),
      { id: 2, kind: 'corrupt', path: f, offset: 4096, length: 4096 },
      { id: 3, kind: 'corrupt', path: f, offset: 10000, length: 50 },
    ];
    const out = await runPlan(plan({ setup: [sparseFile('file', f, '0')], threads: [ops], candidates: [{ op: 1, delta: 0 }], final: [{ id: 'f', path: f, kind: 'file' }] }));
    expect(out.code, dump(out)).toBe(0);
    expect(result(out, 2).ret).toBe(0);
    expect(result(out, 3).ret).toBe(0);
    const ext = finals(out).get('f')!.extents;
    expect(compact(ext)).toEqual(['0+4096 op1', '4096+4096 unknown', '8192+1808 op1', '10000+50 unknown', '10050+55486 op1']);
    for (const x of ext) if (x.src === 'unknown') expect(x.sample).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe.skipIf(noBinary)('exec, barriers, sleep and set-up plumbing', () => {
  it('exec runs argvs with captured values; a failing command is EEXEC; stdin reaches set-up steps', async () => {
    const ops: PlanOp[] = [
      { id: 1, kind: 'exec', argvs: [['touch', path.join(dir, '${word}')], ['true']] },
      { id: 2, kind: 'exec', argvs: [['true'], ['false'], ['touch', path.join(dir, 'never')]] },
      { id: 3, kind: 'exec', argvs: [['/nonexistent/program']] },
    ];
    const out = await runPlan(
      plan({
        setup: [
          { name: 'cat', argv: ['cat'], stdin: 'hello\nworld\n', capture: 'word' },
          { name: 'use', argv: ['test', '${word}', '=', 'hello'] },
        ],
        threads: [ops],
        checks: [
          { name: 'ok', argv: ['echo', 'fine'] },
          { name: 'bad', argv: ['ls', path.join(dir, 'never')] },
        ],
      }),
    );
    expect(out.code, dump(out)).toBe(0);
    expect(eventsOf(out, 'setup')).toMatchObject([{ step: 0, ok: true, captured: 'hello' }, { step: 1, ok: true }]);
    expect(result(out, 1).ret).toBe(0);
    expect(existsSync(path.join(dir, 'hello'))).toBe(true);
    expect(result(out, 2)).toMatchObject({ ret: -1, errno: 'EEXEC' });
    expect(existsSync(path.join(dir, 'never'))).toBe(false);
    expect(result(out, 3)).toMatchObject({ ret: -1, errno: 'EEXEC' });
    const checks = eventsOf(out, 'check');
    expect(checks[0]).toMatchObject({ name: 'ok', exit: 0, output: 'fine\n' });
    expect(checks[1]!.name).toBe('bad');
    expect(checks[1]!.exit).not.toBe(0);
    expect(done(out)).toEqual({ ev: 'done', ok: true });
  });

  it('barriers hold two threads until both arrive, every time', async () => {
    const f = path.join(dir, 'barrier');
    const t0: PlanOp[] = [
      { id: 10, kind: 'sleep', ms: 200 },
      io(1, 'write', f, 0, 4096),
      { id: 11, kind: 'barrier', name: 'b1' },
      io(3, 'read', f, 4096, 4096),
      { id: 12, kind: 'barrier', name: 'b2' },
      io(5, 'write', f, 8192, 4096),
    ];
    const t1: PlanOp[] = [
      io(2, 'write', f, 4096, 4096),
      { id: 21, kind: 'barrier', name: 'b1' },
      io(4, 'read', f, 0, 4096),
      { id: 22, kind: 'sleep', ms: 200 },
      { id: 23, kind: 'barrier', name: 'b2' },
      io(6, 'read', f, 8192, 4096),
    ];
    const out = await runPlan(plan({ setup: [sparseFile('file', f, '0')], threads: [t0, t1], candidates: [1, 2, 5].map((op) => ({ op, delta: 0 })) }));
    expect(out.code, dump(out)).toBe(0);
    const order = out.events.filter((e) => e.ev === 'result').map((e) => (e as { op: number }).op);
    const at = (op: number) => order.indexOf(op);
    // Both writes before either read: thread 0 slept 200 ms before its write, yet thread 1 waited.
    expect(Math.max(at(1), at(2))).toBeLessThan(Math.min(at(3), at(4)));
    expect(at(22)).toBeLessThan(at(5)); // thread 0 waited at b2 for thread 1's sleep
    expect(result(out, 3).data).toEqual([{ offset: 0, length: 4096, src: { op: 2, delta: 0 } }]);
    expect(result(out, 4).data).toEqual([{ offset: 0, length: 4096, src: { op: 1, delta: 0 } }]);
    // Thread 1 read b2's data only if it came after; either way the result is well formed.
    expect([0, 4096]).toContain(result(out, 6).ret);
    const res = results(out);
    expect(res.get(11)?.thread).toBe(0);
    expect(res.get(21)?.thread).toBe(1);
    expect(res.get(12)!.us).toBeGreaterThanOrEqual(100_000); // waited for thread 1's 200 ms sleep
  });

  it('sleep sleeps', async () => {
    const out = await runPlan(plan({ threads: [[{ id: 1, kind: 'sleep', ms: 120 }]] }));
    expect(out.code).toBe(0);
    expect(result(out, 1).ret).toBe(0);
    expect(result(out, 1).us).toBeGreaterThanOrEqual(120_000);
  });

  it('writes exactly the pattern of model/pattern.ts to the file', async () => {
    const f = path.join(dir, 'bytes');
    const at = 2 ** 20 + 3;
    const out = await runPlan(
      plan({
        seed: 987654321,
        setup: [sparseFile('file', f, '0')],
        threads: [[io(77, 'write', f, at, 1000)]],
        // The undo step removes the file: look at its bytes in a check, which runs before the undo.
        checks: [{ name: 'bytes', argv: ['od', '-An', '-tx1', '-v', '-j', String(at), '-N', '1000', f] }],
      }),
    );
    expect(out.code, dump(out)).toBe(0);
    const hex = eventsOf(out, 'check')[0]!.output.replace(/\s+/g, '');
    expect(hex).toBe(Buffer.from(patternBytes(987654321, 77, at, 1000)).toString('hex'));
  });
});
