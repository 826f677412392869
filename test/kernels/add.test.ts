/**
 * `blockfarm kernels add`: a Debian kernel registered under a new name (its
 * vmlinux, module tree, config and System.map given as a user would give
 * their own build's) boots, runs a seed case like the Debian kernel does,
 * and a case needing a layer its config lacks is unsupported with the option
 * named; files that are not kernels are refused in one line.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelConfig } from '../../infra/kernels/config.ts';
import { kernelImageFacts } from '../../infra/kernels/image.ts';
import { loadFetched } from '../../infra/kernels/store.ts';
import type { FetchedKernel } from '../../infra/kernels/store.ts';
import { validateCase } from '../../model/index.ts';
import { ROOT, blockfarm, lines, testKernel } from '../qemu/helpers.ts';

const NAME = `t-copy-${process.pid}`;
let debian: FetchedKernel;

beforeAll(async () => {
  debian = await testKernel();
}, 600_000);

afterAll(async () => {
  await blockfarm(['kernels', 'remove', NAME]);
});

describe('kernel images', () => {
  it('tells a bzImage from a PVH vmlinux and reads the release from either', async () => {
    expect(await kernelImageFacts(debian.bzImage)).toEqual({ kind: 'bzImage', pvh: false, release: debian.info.id });
    expect(await kernelImageFacts(debian.vmlinux)).toMatchObject({ kind: 'vmlinux', pvh: true, release: debian.info.id });
    await expect(kernelImageFacts(path.join(ROOT, 'package.json'))).rejects.toThrow(/not an x86-64 kernel: neither a bzImage .* nor an ELF vmlinux/);
    await expect(kernelImageFacts('/bin/sh')).rejects.toThrow(/not a Linux kernel/);
  });

  it('reads a .config', () => {
    const c = KernelConfig.parse(readFileSync(debian.config, 'utf8'));
    expect(c.get('BLK_DEV_DM')).toBe('m');
    expect(c.builtIn('BLOCK')).toBe(true);
    expect(c.enabled('DM_DUST')).toBe(false);
    expect(c.firstMissing(['BLK_DEV_DM', 'DM_DUST'])).toBe('DM_DUST');
  });
});

describe('blockfarm kernels add', () => {
  it('refuses a file that is not a kernel, a bad name and a Debian id, in one line each', async () => {
    const notKernel = await blockfarm(['kernels', 'add', `${NAME}-x`, '--kernel', 'package.json']);
    expect(notKernel.code).toBe(2);
    expect(lines(notKernel.stderr)).toEqual([expect.stringMatching(/^blockfarm kernels add: package\.json is not an x86-64 kernel/)]);
    const elf = await blockfarm(['kernels', 'add', `${NAME}-x`, '--kernel', '/bin/sh']);
    expect(elf.code).toBe(2);
    expect(lines(elf.stderr)).toEqual([expect.stringMatching(/not a Linux kernel/)]);
    const badName = await blockfarm(['kernels', 'add', 'no/slashes', '--kernel', debian.bzImage]);
    expect([badName.code, lines(badName.stderr).length]).toEqual([2, 1]);
    const debianId = await blockfarm(['kernels', 'add', '6.1.0-99-amd64', '--kernel', debian.bzImage]);
    expect(debianId.stderr).toMatch(/is a Debian kernel id/);
    const wrongModules = await blockfarm(['kernels', 'add', `${NAME}-x`, '--kernel', debian.bzImage, '--modules', path.join(ROOT, 'test')]);
    expect([wrongModules.code, wrongModules.stderr]).toEqual([2, expect.stringMatching(/no module tree for release/)]);
    expect(await loadFetched(`${NAME}-x`)).toBeUndefined();
  });

  it('registers a Debian kernel under a new name; it boots, runs a seed case, and a layer its config lacks is unsupported with the option named', async () => {
    const add = await blockfarm([
      'kernels', 'add', NAME, '--kernel', debian.vmlinux, '--modules', debian.modulesRoot, '--config', debian.config,
      '--system-map', path.join(debian.modulesRoot, 'boot', `System.map-${debian.info.id}`),
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stderr).toMatch(new RegExp(`${NAME} boots \\(`));
    const k = (await loadFetched(NAME))!;
    expect(k.info).toMatchObject({ id: NAME, origin: 'added', release: debian.info.id, upstream: debian.info.id, vmlinux: 'vmlinux', systemMap: 'System.map' });
    expect(lines(add.stdout)).toEqual([k.dir]);

    const again = await blockfarm(['kernels', 'add', NAME, '--kernel', debian.vmlinux, '--no-boot-check']);
    expect([again.code, again.stderr]).toEqual([2, expect.stringMatching(/already registered.*--force/)]);

    const list = JSON.parse((await blockfarm(['kernels', 'list', '--json'])).stdout) as { kernels: { id: string; origin?: string; fetched: boolean }[] };
    expect(list.kernels.find((r) => r.id === NAME)).toMatchObject({ origin: 'added', fetched: true });

    const seedFile = 'corpus/seeds/s1-loop-dio-ext4-lbs512.json';
    const run = await blockfarm(['run', seedFile, '--target', `qemu:${NAME}`, '--json']);
    const out = JSON.parse(run.stdout) as { verdict: string; target: string; divergences?: { class: string; opKind?: string; observed: string }[] };
    expect(out.target).toBe(`qemu:${NAME}`);
    expect(validateCase(JSON.parse(readFileSync(path.join(ROOT, seedFile), 'utf8'))).ok).toBe(true);
    // The same kernel under another name behaves as under its own: Debian's 6.1 has S1's EIO (see test/qemu/seeds.test.ts), newer kernels pass.
    if (/^6\.1\.0-/.test(debian.info.id)) {
      expect([run.code, out.verdict], run.stdout.slice(0, 2000)).toEqual([1, 'divergence']);
      for (const d of out.divergences ?? []) expect(d.class === 'kernel-log' ? d.observed : [d.class, d.opKind, d.observed]).toEqual(d.class === 'kernel-log' ? 'I/O error on loopN' : ['unexpected-error', 'write', 'EIO']);
    } else expect([run.code, out.verdict], run.stdout.slice(0, 2000)).toEqual([0, 'pass']);

    const dust = await blockfarm(['run', 'test/fixtures/kernels/dm-dust-read.json', '--target', `qemu:${NAME}`, '--json']);
    expect(dust.code).toBe(3);
    expect(JSON.parse(dust.stdout)).toMatchObject({ verdict: 'unsupported', reason: `kernel ${NAME} lacks CONFIG_DM_DUST (needed by dm-dust layer 'x'; not set in its config)` });
  }, 900_000);

  it('a kernel that does not come up is not registered, and the error ends with its console', async () => {
    // Debian builds virtio as modules: without its module tree the guest never finds the agent's port.
    const r = await blockfarm(['kernels', 'add', `${NAME}-nomods`, '--kernel', debian.bzImage], { BLOCKFARM_QEMU_BOOT_TIMEOUT_MS: '30000' });
    expect(r.code).toBe(2);
    const failure = lines(r.stderr).filter((l) => l.startsWith('blockfarm kernels add:'));
    expect(failure).toEqual([expect.stringMatching(new RegExp(`^blockfarm kernels add: kernel ${NAME}-nomods does not boot: .*the agent did not answer within 30000 ms; console: .*\\[\\s*\\d+\\.\\d+\\] `))]);
    expect(await loadFetched(`${NAME}-nomods`)).toBeUndefined();
  }, 600_000);
});
