/**
 * The final read-back tells readable sectors from unreadable ones at the
 * device's logical block size, not at page size. A QEMU campaign raised a
 * false alarm here: zeroing 1 KiB at the start of an unwiped dm-integrity
 * device makes sectors 0-1 readable zeroes while the rest of their page
 * still fails its checksum; a read-back in 4 KiB pieces reported the zeroes
 * as unreadable too.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { validateCase } from '../../model/index.ts';
import { runCase } from '../../worker/run-case.ts';
import { createQemuTarget } from '../../worker/targets/qemu/factory.ts';
import type { QemuTarget } from '../../worker/targets/qemu/qemu-target.ts';
import { testKernel } from './helpers.ts';

let target: QemuTarget | undefined;
afterAll(async () => {
  await target?.close();
});

describe('final read-back granularity', () => {
  it('zeroed 512-byte sectors of an unwiped dm-integrity device read as zeroes beside unreadable ones', async () => {
    const k = await testKernel();
    target = await createQemuTarget(`qemu:${k.info.id}`);
    const v = validateCase(JSON.parse(readFileSync(new URL('../fixtures/qemu/integrity-zeroed-sectors.json', import.meta.url), 'utf8')));
    if (!v.ok) throw new Error('fixture invalid');
    const o = await runCase(target, v.value, v.info);
    expect(o.kind, JSON.stringify(o).slice(0, 800)).toBe('pass');
  }, 300_000);
});
