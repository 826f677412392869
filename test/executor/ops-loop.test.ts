/**
 * Ops on loop devices the plans create themselves (`losetup --find --show`
 * in a set-up step, `losetup -d ${name}` as its undo): geometry probes,
 * O_DIRECT IO, discard/zeroout/secure discard, BLKFLSBUF, the loop ioctls
 * (also while another thread writes), and final reads of a device.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanOp } from '../../worker/executor/protocol.ts';
import { cleanup, compact, dump, eventsOf, finals, io, leftovers, loopDevice, noRoot, plan, result, runPlan, sparseFile, tempDir } from './harness.ts';

const MiB = 1 << 20;
let dir: string;

beforeAll(async () => {
  dir = await tempDir('loop');
});
afterAll(async () => {
  await cleanup(dir);
});

describe.skipIf(noRoot)('loop devices', () => {
  it('probes geometry: a 4096-byte-sector loop with direct IO, a 512-byte one without', async () => {
    const f0 = path.join(dir, 'g0');
    const f1 = path.join(dir, 'g1');
    const out = await runPlan(
      plan({
        setup: [sparseFile('f0', f0, '64M'), sparseFile('f1', f1, '32M'), loopDevice('l0', f0, { sectorSize: 4096, directIo: true }), loopDevice('l1', f1, { directIo: false })],
        geometry: [
          { id: 'l0', path: '${l0}', kind: 'block' },
          { id: 'l1', path: '${l1}', kind: 'block' },
          { id: 'f0', path: f0, kind: 'file' },
        ],
      }),
    );
    expect(out.code, dump(out)).toBe(0);
    const g = new Map(eventsOf(out, 'geometry').map((e) => [e.id, e]));
    expect(g.get('l0')).toMatchObject({ size: 64 * MiB, logicalBlockSize: 4096, directIo: true });
    expect(g.get('l0')!.physicalBlockSize).toBeGreaterThanOrEqual(4096);
    expect(g.get('l0')!.dioOffsetAlign).toBeUndefined();
    expect(g.get('l1')).toMatchObject({ size: 32 * MiB, logicalBlockSize: 512, directIo: false });
    expect(g.get('f0')).toMatchObject({ size: 64 * MiB });
    expect(g.get('f0')!.directIo).toBeUndefined();
    expect(await leftovers(dir)).toEqual({ loops: [], mounts: [] });
  });

  it('writes, reads, discards, zeroes, flushes and reads back the device', async () => {
    const f = path.join(dir, 'io');
    const l = '${l0}';
    const ops: PlanOp[] = [
      io(1, 'write', l, 0, MiB, { direct: true }),
      io(2, 'write', l, MiB, 65536, { direct: true, via: 'io_uring', vectors: 4 }),
      io(3, 'read', l, 0, 16384, { direct: true, via: 'pvec', vectors: 2 }),
      { id: 4, kind: 'discard', path: l, mode: 'discard', offset: 65536, length: 65536 },
      { id: 5, kind: 'discard', path: l, mode: 'zeroout', offset: 131072, length: 65536 },
      { id: 6, kind: 'discard', path: l, mode: 'secure', offset: 196608, length: 4096 },
      { id: 7, kind: 'flush', path: l },
      io(8, 'read', l, 65536, 131072, { direct: true }),
      io(9, 'write', l, 512, 4096, { direct: true }), // not aligned to the 4096-byte sectors
      io(10, 'write', l, 64 * MiB, 4096), // at the end of the device
      { id: 11, kind: 'discard', path: l, mode: 'zeroout', offset: 100, length: 512 },
    ];
    const out = await runPlan(
      plan({
        setup: [sparseFile('file', f, '64M'), loopDevice('l0', f, { sectorSize: 4096, directIo: true })],
        threads: [ops],
        candidates: [1, 2].map((op) => ({ op, delta: 0 })),
        final: [
          { id: 'l0', path: l, kind: 'block', ranges: [[0, 2 * MiB]] },
          { id: 'backing', path: f, kind: 'file', ranges: [[MiB - 4096, MiB + 8192]] },
        ],
      }),
    );
    expect(out.code, dump(out)).toBe(0);
    expect(result(out, 1).ret).toBe(MiB);
    expect(result(out, 2).ret).toBe(65536);
    expect(result(out, 3).data).toEqual([{ offset: 0, length: 16384, src: { op: 1, delta: 0 } }]);
    const disc = result(out, 4);
    if (disc.ret < 0) expect(disc.errno).toBe('EOPNOTSUPP');
    expect(result(out, 5).ret).toBe(0);
    const secure = result(out, 6);
    expect(secure.ret === 0 || secure.errno === 'EOPNOTSUPP').toBe(true);
    expect(result(out, 7).ret).toBe(0);
    // The discarded range reads as zeroes on a loop device (a hole punched in the file), the zeroed one surely.
    expect(compact(result(out, 8).data!)).toEqual(disc.ret === 0 ? ['0+131072 zero'] : ['0+65536 op1', '65536+65536 zero']);
    expect(result(out, 9)).toMatchObject({ ret: -1, errno: 'EINVAL' });
    expect(result(out, 10)).toMatchObject({ ret: -1, errno: 'ENOSPC' });
    expect(result(out, 11)).toMatchObject({ ret: -1, errno: 'EINVAL' });

    const fin = finals(out).get('l0')!;
    expect(fin.size).toBe(64 * MiB);
    expect(fin.ranges).toEqual([[0, 2 * MiB]]);
    const head = disc.ret === 0 ? ['0+65536 op1', '65536+131072 zero'] : ['0+131072 op1', '131072+65536 zero'];
    expect(compact(fin.extents)).toEqual([...head, `196608+${MiB - 196608} op1`, `${MiB}+65536 op2`, `${MiB + 65536}+${MiB - 65536} zero`]);
    // The loop device maps its backing file one to one.
    expect(compact(finals(out).get('backing')!.extents)).toEqual([`${MiB - 4096}+4096 op1`, `${MiB}+8192 op2`]);
    expect(await leftovers(dir)).toEqual({ loops: [], mounts: [] });
  });

  it('toggles direct IO and changes the block size (LOOP_SET_DIRECT_IO, LOOP_SET_BLOCK_SIZE)', async () => {
    const f = path.join(dir, 'ioctl');
    const ops: PlanOp[] = [
      io(1, 'write', '${l0}', 0, 8192, { direct: true }),
      { id: 2, kind: 'loop-set-direct-io', path: '${l0}', on: false },
      { id: 3, kind: 'loop-set-block-size', path: '${l0}', size: 512 },
      io(4, 'write', '${l0}', 512, 512, { direct: true }),
      io(5, 'read', '${l0}', 0, 8192, { direct: true }),
    ];
    const out = await runPlan(
      plan({
        setup: [sparseFile('file', f, '16M'), loopDevice('l0', f, { sectorSize: 4096, directIo: true })],
        threads: [ops],
        candidates: [1, 4].map((op) => ({ op, delta: 0 })),
        checks: [
          { name: 'dio', argv: ['losetup', '--list', '--noheadings', '--output', 'DIO', '${l0}'] },
          { name: 'ss', argv: ['blockdev', '--getss', '${l0}'] },
        ],
      }),
    );
    expect(out.code, dump(out)).toBe(0);
    expect(result(out, 2).ret).toBe(0);
    expect(result(out, 3).ret).toBe(0);
    expect(result(out, 4).ret).toBe(512);
    expect(compact(result(out, 5).data!)).toEqual(['0+512 op1', '512+512 op4', '1024+7168 op1']);
    const checks = new Map(eventsOf(out, 'check').map((c) => [c.name, c.output.trim()]));
    expect(checks.get('dio')).toBe('0');
    expect(checks.get('ss')).toBe('512');
  });

  it('every legal write succeeds while another thread toggles direct IO (S1)', async () => {
    const f = path.join(dir, 's1');
    const writes: PlanOp[] = [{ id: 1, kind: 'barrier', name: 'go' }];
    for (let k = 0; k < 64; k++) writes.push(io(100 + k, 'write', '${l0}', k * 4096, 4096, { direct: k % 2 === 0, via: k % 3 === 0 ? 'io_uring' : 'psync' }));
    const toggles: PlanOp[] = [{ id: 2, kind: 'barrier', name: 'go' }];
    for (let k = 0; k < 8; k++) toggles.push({ id: 10 + k, kind: 'loop-set-direct-io', path: '${l0}', on: k % 2 === 1 });
    const out = await runPlan(
      plan({
        setup: [sparseFile('file', f, '16M'), loopDevice('l0', f, { sectorSize: 512, directIo: true })],
        threads: [writes, toggles],
        candidates: writes.filter((o) => o.kind === 'write').map((o) => ({ op: o.id, delta: 0 })),
        final: [{ id: 'l0', path: '${l0}', kind: 'block', ranges: [[0, 64 * 4096]] }],
      }),
    );
    expect(out.code, dump(out)).toBe(0);
    for (let k = 0; k < 64; k++) expect(result(out, 100 + k).ret, `write ${100 + k}`).toBe(4096);
    for (let k = 0; k < 8; k++) {
      const r = result(out, 10 + k);
      if (r.ret < 0) expect(['EINVAL', 'EBUSY', 'EAGAIN']).toContain(r.errno);
    }
    expect(compact(finals(out).get('l0')!.extents)).toEqual(Array.from({ length: 64 }, (_, k) => `${k * 4096}+4096 op${100 + k}`));
  });
});
