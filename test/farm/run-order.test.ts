/** The order a runner takes a batch's cases in (worker/farm/run-order.ts). */
import { describe, expect, it } from 'vitest';
import { type StackInfo, validateCase } from '../../model/index.ts';
import { runOrder } from '../../worker/farm/run-order.ts';

function infoWithDisk(lbs: 512 | 4096, pbs: 512 | 4096): StackInfo {
  const v = validateCase({
    format: 'blockfarm-case/1',
    name: `d-${lbs}-${pbs}`,
    seed: 1,
    stack: { layers: [{ id: 'd', kind: 'disk', size: 8 * 1048576, logicalBlockSize: lbs, physicalBlockSize: pbs }] },
    program: { threads: [{ ops: [{ kind: 'write', id: 1, target: 'd', offset: 0, length: 4096 }] }] },
  });
  if (!v.ok) throw new Error(v.issues.map((i) => i.message).join('; '));
  return v.info;
}

// The QEMU target's key is its VM state for the disks' geometry; this one says the same from the stack.
const byGeometry = {
  runOrderKey: (info: StackInfo) =>
    info.layers.map((l) => (l.kind === 'disk' ? `${l.logicalBlockSize}/${l.physicalBlockSize ?? l.logicalBlockSize}` : '')).join(','),
};

describe('runOrder', () => {
  it('keeps the batch order for a target without a run-order key', () => {
    const infos = [infoWithDisk(512, 512), infoWithDisk(4096, 4096), infoWithDisk(512, 512)];
    expect(runOrder(infos, {})).toEqual([0, 1, 2]);
  });

  it('groups cases by key, groups in order of first appearance, batch order inside a group', () => {
    const a = infoWithDisk(512, 512);
    const b = infoWithDisk(512, 4096);
    const c = infoWithDisk(4096, 4096);
    const infos = [b, a, c, a, b, c, a];
    const order = runOrder(infos, byGeometry);
    expect(order).toEqual([0, 4, 1, 3, 6, 2, 5]);
    // Every case exactly once.
    expect([...order].sort((x, y) => x - y)).toEqual(infos.map((_, i) => i));
    // Each geometry is one run of consecutive cases.
    const keys = order.map((i) => byGeometry.runOrderKey(infos[i]!));
    const runs = keys.filter((k, i) => i === 0 || k !== keys[i - 1]);
    expect(runs).toHaveLength(3);
  });
});
