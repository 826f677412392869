/**
 * The seed scenarios (corpus/seeds) on a Debian kernel in QEMU. Every seed
 * must pass, except where the kernel really behaves otherwise; each such
 * case is listed here with the evidence:
 *
 * - S1 on 6.1 (Debian 6.1.192 and older): `losetup --direct-io=on
 *   --sector-size 512` opens the backing file with O_DIRECT; the kernel's
 *   LOOP_CONFIGURE declines direct IO for a 512-byte loop on a filesystem
 *   over a 4 KiB-sector disk (/sys/block/loopN/loop/dio reads 0) but keeps
 *   the backing file's O_DIRECT flag, so the "buffered" fallback sends
 *   512-aligned IO to the file as direct IO, which the filesystem refuses:
 *   `loop: Write error at byte offset 512, length 512.` and `I/O error, dev
 *   loop0, sector 1 op 0x1:(WRITE)`; the write fails with EIO although it
 *   is legal for the loop device's advertised block size. (Setting direct
 *   IO after attaching, with LOOP_SET_DIRECT_IO, is refused with EINVAL
 *   instead, and IO then works.) Exactly S1's bug.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSeedCases } from '../../corpus/seeds.ts';
import { validateCase } from '../../model/index.ts';
import { runCase } from '../../worker/run-case.ts';
import { createQemuTarget } from '../../worker/targets/qemu/factory.ts';
import type { QemuTarget } from '../../worker/targets/qemu/qemu-target.ts';
import { checkSeedOutcome, testKernel } from './helpers.ts';

let t: QemuTarget;
let kernelId = '';

beforeAll(async () => {
  const k = await testKernel();
  kernelId = k.info.id;
  t = await createQemuTarget(`qemu:${k.info.id}`);
}, 300_000);

afterAll(async () => {
  await t?.close();
});

describe('seed scenarios on the qemu target', () => {
  const seeds = loadSeedCases().map((s) => {
    const v = validateCase(s.caseJson);
    if (!v.ok) throw new Error(`${s.file}: ${v.issues.map((i) => i.message).join('; ')}`);
    return v;
  });
  it.each(seeds.map((v) => [v.value.name, v] as const))('%s', async (name, v) => {
    const o = await runCase(t, v.value, v.info);
    checkSeedOutcome(name, v.value, kernelId, o);
  }, 300_000);
});
