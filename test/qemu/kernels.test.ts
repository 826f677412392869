/**
 * Debian kernels for the QEMU target: the archive's catalog, the fetch
 * pipeline (apt-get download, dpkg-deb, depmod, vmlinux extraction) on a
 * real package, and the CLI's answers to bad ids.
 */
import { access, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { availableKernels, compareNewestFirst, fetchKernel, fetchedKernels, kernelIdProblem, parseKernelId } from '../../infra/kernels/index.ts';
import { parsePolicy } from '../../infra/kernels/catalog.ts';
import { VmlinuxError, extractVmlinux, xzOffsets } from '../../infra/kernels/vmlinux.ts';
import { blockfarm, lines, testKernel } from './helpers.ts';

const temps: string[] = [];
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});
async function temp(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'blockfarm-kernels-'));
  temps.push(d);
  return d;
}

async function elfHeader(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(20);
    await fh.read(b, 0, 20, 0);
    return b;
  } finally {
    await fh.close();
  }
}

describe('kernel ids', () => {
  it('parses ABI and flavour, and orders newest first with the generic flavour first', () => {
    expect(parseKernelId('6.1.0-56-cloud-amd64')).toEqual({ id: '6.1.0-56-cloud-amd64', abi: [6, 1, 0, 56], flavour: 'cloud-amd64' });
    expect(parseKernelId('6.1.0-56-arm64')).toBeUndefined();
    expect(kernelIdProblem('latest')).toMatch(/not a kernel id/);
    const ids = ['6.1.0-47-amd64', '6.1.0-56-rt-amd64', '6.1.0-56-amd64', '6.1.0-9-amd64', '6.1.0-56-cloud-amd64'];
    expect([...ids].sort(compareNewestFirst)).toEqual(['6.1.0-56-amd64', '6.1.0-56-cloud-amd64', '6.1.0-56-rt-amd64', '6.1.0-47-amd64', '6.1.0-9-amd64']);
  });

  it('reads candidate versions from apt-cache policy output', () => {
    const text = ['linux-image-6.1.0-56-amd64:', '  Installed: (none)', '  Candidate: 6.1.192-2', 'linux-image-6.1.0-1-amd64:', '  Installed: (none)', '  Candidate: (none)', ''].join('\n');
    expect([...parsePolicy(text)]).toEqual([['linux-image-6.1.0-56-amd64', '6.1.192-2']]);
  });
});

describe('vmlinux extraction', () => {
  it('finds every xz magic and refuses an image without an ELF payload', async () => {
    const magic = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
    expect(xzOffsets(Buffer.concat([Buffer.alloc(10), magic, Buffer.alloc(3), magic]))).toEqual([10, 19]);
    const d = await temp();
    await writeFile(path.join(d, 'bz'), Buffer.alloc(4096, 1));
    await expect(extractVmlinux(path.join(d, 'bz'), path.join(d, 'out'))).rejects.toThrow(VmlinuxError);
    await writeFile(path.join(d, 'bz2'), Buffer.concat([Buffer.alloc(100), magic, Buffer.alloc(100, 7)]));
    await expect(extractVmlinux(path.join(d, 'bz2'), path.join(d, 'out'))).rejects.toThrow(/could not extract an ELF vmlinux/);
  });
});

describe('the apt archive', () => {
  it('lists generic, cloud and rt kernels with versions, newest first', async () => {
    const avail = await availableKernels();
    expect(avail.length).toBeGreaterThan(0);
    for (const k of avail) expect(k.upstream).toMatch(/^\d+\.\d+\.\d+$/);
    const flavours = new Set(avail.map((k) => parseKernelId(k.id)!.flavour));
    expect(flavours).toEqual(new Set(['amd64', 'cloud-amd64', 'rt-amd64']));
    expect(avail.map((k) => k.id)).toEqual([...avail.map((k) => k.id)].sort(compareNewestFirst));
  });
});

describe('a fetched kernel', () => {
  it('has a bootable ELF vmlinux, its bzImage, its config and a depmod-ed module tree', async () => {
    const k = await testKernel();
    const h = await elfHeader(k.vmlinux);
    expect(h.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    expect(h.readUInt16LE(18)).toBe(62); // EM_X86_64
    await access(k.bzImage);
    expect(await readFile(k.config, 'utf8')).toMatch(/^CONFIG_PVH=y$/m);
    const dep = await readFile(path.join(k.modulesDir, 'modules.dep'), 'utf8');
    expect(dep).toMatch(/^kernel\/drivers\/md\/dm-crypt\.ko:/m);
    expect((await fetchedKernels()).map((f) => f.info.id)).toContain(k.info.id);
  });

  it('fetches from nothing into an empty cache, and a second fetch keeps it', async () => {
    const k = await testKernel();
    const cache = await temp();
    const env = { ...process.env, BLOCKFARM_CACHE: cache };
    const fresh = await fetchKernel(k.info.id, { env });
    expect(fresh.dir.startsWith(cache)).toBe(true);
    expect(fresh.info.packageVersion).toBe(k.info.packageVersion);
    expect((await elfHeader(fresh.vmlinux)).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    const again = await fetchKernel(k.info.id, { env });
    expect(again.info.fetchedAt).toBe(fresh.info.fetchedAt);
  }, 300_000);
});

describe('blockfarm kernels', () => {
  it('list shows the fetched kernel and what is available', async () => {
    const k = await testKernel();
    const r = await blockfarm(['kernels', 'list', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { kernels: Array<{ id: string; fetched: boolean; available: boolean }> };
    expect(doc.kernels.find((x) => x.id === k.info.id)).toMatchObject({ fetched: true });
    expect(doc.kernels.filter((x) => x.available).length).toBeGreaterThan(1);
    const human = await blockfarm(['kernels', 'list']);
    expect(human.stdout).toMatch(new RegExp(`^${k.info.id.replace(/\./g, '\\.')}\\s+\\S+\\s+fetched`, 'm'));
  });

  it('fetch answers a bad id and an unknown kernel with one line and exit 2', async () => {
    const bad = await blockfarm(['kernels', 'fetch', 'newest']);
    expect(bad.code).toBe(2);
    expect(lines(bad.stderr)).toEqual([expect.stringMatching(/^blockfarm kernels fetch: 'newest' is not a kernel id/)]);
    const unknown = await blockfarm(['kernels', 'fetch', '6.1.0-999-amd64']);
    expect(unknown.code).toBe(2);
    expect(lines(unknown.stderr)).toEqual([expect.stringMatching(/unknown kernel '6\.1\.0-999-amd64': no package linux-image-6\.1\.0-999-amd64/)]);
  });

  it('fetch of a fetched kernel is a no-op that prints its directory', async () => {
    const k = await testKernel();
    const r = await blockfarm(['kernels', 'fetch', k.info.id]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(k.dir);
  });
});
