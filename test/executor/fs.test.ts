/**
 * Files on real filesystems (ext4, xfs) that the plan builds on a loop
 * device over a sparse file: every fallocate mode, a remount through `exec`
 * (closePrefix must close the cached fds first, or umount fails with EBUSY),
 * and read-back after the shifting modes, checked against a byte model.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBytes, patternBytes } from '../../model/pattern.ts';
import type { PlanOp } from '../../worker/executor/protocol.ts';
import { cleanup, compact, dump, filesystemSupported, finals, hasTool, io, leftovers, loopDevice, mkfs, mountSteps, noRoot, plan, result, runPlan, sparseFile, tempDir } from './harness.ts';

const FALLOC = { allocate: 0, keepSize: 0x01, punchHole: 0x03, collapse: 0x08, zeroRange: 0x10, zeroRangeKeepSize: 0x11, insert: 0x20, unshare: 0x40 };

let dir: string;
beforeAll(async () => {
  dir = await tempDir('fs');
});
afterAll(async () => {
  await cleanup(dir);
});

/** What the file must hold after the program below, byte by byte. */
function expectedContent(seed: number): Uint8Array {
  let b = new Uint8Array(131072);
  b.set(patternBytes(seed, 1, 0, 65536));
  b.fill(0, 4096, 8192); // punch-hole
  b.fill(0, 12288, 16384); // zero-range
  b.fill(0, 126976, 131072); // zero-range-keep-size, below EOF
  b = Uint8Array.from([...b.subarray(0, 16384), ...b.subarray(20480)]); // collapse [16384, 20480)
  return Uint8Array.from([...new Uint8Array(4096), ...b]); // insert [0, 4096)
}

for (const fs of ['ext4', 'xfs'] as const) {
  describe.skipIf(noRoot)(`fallocate and remount on ${fs}`, () => {
    it(`runs every fallocate mode and reads back what the modes mean (${fs})`, async (ctx) => {
      if (!(await filesystemSupported(fs)) || !(await hasTool(`mkfs.${fs}`))) return ctx.skip(`no ${fs} here`);
      const img = path.join(dir, `${fs}.img`);
      const mnt = path.join(dir, `${fs}-mnt`);
      const f = path.join(mnt, 'file');
      const seed = 4242;
      const ops: PlanOp[] = [
        io(1, 'write', f, 0, 65536),
        { id: 2, kind: 'fsync', path: f, dataOnly: false },
        { id: 3, kind: 'fallocate', path: f, mode: FALLOC.allocate, offset: 65536, length: 65536 },
        { id: 4, kind: 'fallocate', path: f, mode: FALLOC.keepSize, offset: 131072, length: 65536 },
        { id: 5, kind: 'fallocate', path: f, mode: FALLOC.punchHole, offset: 4096, length: 4096 },
        { id: 6, kind: 'fallocate', path: f, mode: FALLOC.zeroRange, offset: 12288, length: 4096 },
        { id: 7, kind: 'fallocate', path: f, mode: FALLOC.zeroRangeKeepSize, offset: 126976, length: 73024 },
        { id: 8, kind: 'fallocate', path: f, mode: FALLOC.collapse, offset: 16384, length: 4096 },
        { id: 9, kind: 'fallocate', path: f, mode: FALLOC.insert, offset: 0, length: 4096 },
        { id: 10, kind: 'fallocate', path: f, mode: FALLOC.unshare, offset: 0, length: 4096 },
        { id: 11, kind: 'fallocate', path: f, mode: FALLOC.collapse, offset: 100, length: 4096 }, // not block aligned
        { id: 12, kind: 'fallocate', path: f, mode: 0x80, offset: 0, length: 4096 }, // no such mode
        // Without closePrefix the thread's cached fd of `f` keeps the filesystem busy.
        { id: 15, kind: 'exec', argvs: [['umount', mnt]] },
        // Remount: closePrefix closes the cached fd first.
        { id: 13, kind: 'exec', argvs: [['umount', mnt], ['mount', '-t', fs, '${dev}', mnt]], closePrefix: `${mnt}/` },
        io(14, 'read', f, 0, 131072, { direct: true }),
      ];
      const candidates = [0, 4096, -4096].map((delta) => ({ op: 1, delta }));
      const out = await runPlan(
        plan({
          seed,
          setup: [
            sparseFile('image', img, '512M'),
            loopDevice('dev', img),
            mkfs(fs, '${dev}'),
            ...mountSteps(fs, '${dev}', mnt),
            { name: 'create file', argv: ['truncate', '-s', '0', f] },
          ],
          threads: [ops],
          candidates,
          final: [{ id: 'file', path: f, kind: 'file' }],
        }),
        { killAfterMs: 300_000 },
      );
      expect(out.code, dump(out)).toBe(0);
      for (const op of [2, 3, 4, 5, 6, 7, 8, 9]) expect(result(out, op), `op ${op}\n${dump(out)}`).toMatchObject({ ret: 0 });
      // Unshare needs shared extents (reflink): ext4 has none, xfs may answer 0.
      const unshare = result(out, 10);
      if (unshare.ret < 0) expect(['EOPNOTSUPP', 'EINVAL']).toContain(unshare.errno);
      expect(result(out, 11)).toMatchObject({ ret: -1, errno: 'EINVAL' });
      expect(result(out, 12).ret).toBe(-1);
      expect(['EOPNOTSUPP', 'EINVAL']).toContain(result(out, 12).errno);
      expect(result(out, 15)).toMatchObject({ ret: -1, errno: 'EEXEC' });
      expect(out.stderr).toMatch(/umount.*exited 32/);
      expect(result(out, 13), dump(out)).toMatchObject({ ret: 0 });

      const want = compact(decodeBytes(seed, expectedContent(seed), 0, candidates));
      expect(want).toEqual(['0+4096 zero', '4096+4096 op1@-4096', '8192+4096 zero', '12288+4096 op1@-4096', '16384+4096 zero', '20480+45056 op1', '65536+65536 zero']);
      expect(result(out, 14).ret).toBe(131072);
      expect(compact(result(out, 14).data!)).toEqual(want);
      const fin = finals(out).get('file')!;
      expect(fin.size).toBe(131072);
      expect(compact(fin.extents)).toEqual(want);
      expect(await leftovers(dir)).toEqual({ loops: [], mounts: [] });
    });
  });
}
