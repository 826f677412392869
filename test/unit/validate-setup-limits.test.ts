/** Stacks the kernel would refuse at set-up must be rejected by the validator, with the path and the reason. */
import { describe, expect, it } from 'vitest';
import { validateCase } from '../../model/index.ts';

const MiB = 1024 * 1024;
const base = (layers: unknown[], ops: unknown[]) => ({ format: 'blockfarm-case/1', name: 't', seed: 1, stack: { layers }, program: { threads: [{ ops }] } });
const issues = (c: unknown) => {
  const v = validateCase(c);
  return v.ok ? [] : v.issues.map((i) => `${i.path}: ${i.message}`);
};

describe('validator: set-up limits of the kernel', () => {
  it('refuses a remount of a filesystem that holds an attached loop device\'s backing file', () => {
    const c = base(
      [
        { id: 'd0', kind: 'disk', size: 128 * MiB },
        { id: 'fs0', kind: 'fs', on: 'd0', type: 'ext4' },
        { id: 'b', kind: 'file', on: 'fs0', name: 'b.img', size: 16 * MiB },
        { id: 'lo', kind: 'loop', on: 'b' },
      ],
      [{ kind: 'remount', id: 1, target: 'fs0' }, { kind: 'write', id: 2, target: 'lo', offset: 0, length: 4096 }],
    );
    expect(issues(c)).toEqual([expect.stringMatching(/^program\.threads\[0\]\.ops\[0\]\.target: .*cannot be unmounted/)]);
  });

  it('refuses a dm-linear window that splits the lower device\'s logical blocks', () => {
    const c = base([{ id: 'd0', kind: 'disk', size: 64 * MiB, logicalBlockSize: 4096 }, { id: 'l', kind: 'dm-linear', on: 'd0', offset: 512 }], []);
    expect(issues(c)).toEqual([expect.stringMatching(/^stack\.layers\[1\]\.offset: offset 512 is not a multiple of the logical block size 4096/)]);
  });

  it('refuses a layer on a snapshot that a program op creates', () => {
    const c = base(
      [
        { id: 'd0', kind: 'disk', size: 64 * MiB },
        { id: 'o', kind: 'dm-snapshot-origin', on: 'd0' },
        { id: 'cow', kind: 'disk', size: 80 * MiB },
        { id: 's', kind: 'dm-snapshot', origin: 'o', cow: 'cow', createdAt: 'op' },
        { id: 'l', kind: 'dm-linear', on: 's' },
      ],
      [{ kind: 'snapshot-create', id: 1, target: 's' }],
    );
    expect(issues(c)).toContainEqual(expect.stringMatching(/^stack\.layers\[3\]\.createdAt: 'l' sits on snapshot 's'/));
  });

  it('refuses a filesystem on a read-only loop device', () => {
    const c = base(
      [
        { id: 'd0', kind: 'disk', size: 64 * MiB },
        { id: 'lo', kind: 'loop', on: 'd0', readOnly: true },
        { id: 'fs0', kind: 'fs', on: 'lo', type: 'ext4' },
      ],
      [],
    );
    expect(issues(c)).toEqual([expect.stringMatching(/^stack\.layers\[2\]\.on: 'lo' is a read-only loop device/)]);
  });
});
