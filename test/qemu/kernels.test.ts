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
import { VmlinuxError, bzPayload, extractVmlinux, xzOffsets } from '../../infra/kernels/vmlinux.ts';
import { loadFetched } from '../../infra/kernels/store.ts';
import { runTool } from '../../infra/kernels/proc.ts';
import { symbolizerFor } from '../../worker/targets/qemu/factory.ts';
import { ROOT, blockfarm, lines, testKernel } from './helpers.ts';

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

/** A minimal bzImage: boot protocol 2.15 header, `setupSects` setup sectors, then `payload` (with the kernel's appended size). */
function fakeBzImage(payload: Buffer, uncompressed: number, setupSects = 3): Buffer {
  const setup = Buffer.alloc((setupSects + 1) * 512);
  setup[0x1f1] = setupSects;
  setup.write('HdrS', 0x202, 'latin1');
  setup.writeUInt16LE(0x20f, 0x206);
  const gap = Buffer.alloc(100, 0xcc); // code before the payload
  const size = Buffer.alloc(4);
  size.writeUInt32LE(uncompressed);
  const body = Buffer.concat([payload, size]);
  setup.writeUInt32LE(gap.length, 0x248);
  setup.writeUInt32LE(body.length, 0x24c);
  return Buffer.concat([setup, gap, body, Buffer.alloc(64)]);
}

describe('vmlinux extraction from the boot header', () => {
  it('finds the payload the header names and undoes its compressor (gzip, lz4), checking the appended size', async () => {
    const d = await temp();
    const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(20000, 3)]);
    await writeFile(path.join(d, 'elf'), elf);
    for (const [tool, args] of [['gzip', ['-c']], ['lz4', ['-l', '-c']]] as const) {
      const z = await runTool('sh', ['-c', `${tool} ${args.join(' ')} < '${path.join(d, 'elf')}' > '${path.join(d, `elf.${tool}`)}'`]);
      expect(z.code, z.stderr).toBe(0);
      const image = fakeBzImage(await readFile(path.join(d, `elf.${tool}`)), elf.length);
      expect(bzPayload(image)?.offset).toBe(4 * 512 + 100);
      await writeFile(path.join(d, `bz.${tool}`), image);
      await extractVmlinux(path.join(d, `bz.${tool}`), path.join(d, `out.${tool}`));
      expect((await readFile(path.join(d, `out.${tool}`))).equals(elf), tool).toBe(true);
      // A header whose size disagrees with the payload is refused, not half-used.
      await writeFile(path.join(d, `bad.${tool}`), fakeBzImage(await readFile(path.join(d, `elf.${tool}`)), elf.length + 1));
      await expect(extractVmlinux(path.join(d, `bad.${tool}`), path.join(d, `out2.${tool}`))).rejects.toThrow(/the image says 20005/);
    }
    await writeFile(path.join(d, 'unknown'), fakeBzImage(Buffer.alloc(64, 0x11), 10));
    await expect(extractVmlinux(path.join(d, 'unknown'), path.join(d, 'out3'))).rejects.toThrow(/in no format we can undo \(starts 111111111111\)/);
  });
});

/** The build id an ELF file's notes carry (readelf -n). */
async function buildId(file: string): Promise<string> {
  const r = await runTool('readelf', ['-n', file]);
  const m = /Build ID: ([0-9a-f]+)/.exec(r.stdout);
  if (!m) throw new Error(`${file}: no build id (${r.stderr.trim()})`);
  return m[1]!;
}

describe('the other flavours, and --dbg', () => {
  // A cache of their own under the project's ignored .cache/ (CI keeps it): the tests' kernel stays the newest fetched.
  const env = { BLOCKFARM_CACHE: path.join(ROOT, '.cache', 'test-flavours') };
  const sibling = async (flavour: 'cloud' | 'rt') => (await testKernel()).info.id.replace(/-(cloud-|rt-)?amd64$/, `-${flavour}-amd64`);

  it('fetches a cloud kernel (its bzImage is lz4-compressed) with the matching -dbg vmlinux, and lists it fetched+dbg', async () => {
    const id = await sibling('cloud');
    const r = await blockfarm(['kernels', 'fetch', id, '--dbg'], env);
    expect(r.code, r.stderr).toBe(0);
    const k = (await loadFetched(id, env))!;
    expect(r.stdout.trim()).toBe(k.dir);
    expect((await elfHeader(k.vmlinux)).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(await readFile(k.config, 'utf8')).toMatch(/^CONFIG_KERNEL_LZ4=y$/m);
    expect(await readFile(path.join(k.modulesDir, 'modules.dep'), 'utf8')).toMatch(/^kernel\/drivers\/md\/dm-crypt\.ko:/m);
    // The -dbg vmlinux is the same build as the one we boot, with its debug info.
    expect(k.dbgVmlinux).toBeDefined();
    expect(await buildId(k.dbgVmlinux!)).toBe(await buildId(k.vmlinux));
    expect((await runTool('readelf', ['-S', '-W', k.dbgVmlinux!])).stdout).toMatch(/\.debug_info/);
    const list = await blockfarm(['kernels', 'list', '--json'], env);
    const doc = JSON.parse(list.stdout) as { kernels: Array<{ id: string; fetched: boolean; dbg: boolean; available: boolean }> };
    expect(doc.kernels.find((x) => x.id === id)).toMatchObject({ fetched: true, dbg: true, available: true });
    expect((await blockfarm(['kernels', 'list'], env)).stdout).toMatch(new RegExp(`^${id.replace(/\./g, '\\.')}\\s+\\S+\\s+fetched\\+dbg`, 'm'));
  }, 600_000);

  it('its -dbg vmlinux symbolizes a report (file:line of built-in frames) for the qemu target', async () => {
    const k = (await loadFetched(await sibling('cloud'), env))!;
    const log = [
      'Kernel panic - not syncing: sysrq triggered crash',
      'Call Trace:',
      ' <TASK>',
      ' panic+0x118/0x2ed',
      ' ? sysrq_handle_crash+0x16/0x20',
      ' write_sysrq_trigger+0x24/0x40',
      ' </TASK>',
    ];
    const out = (await symbolizerFor(k).symbolize(log)).join('\n');
    expect(out).toMatch(/panic\+0x118\/0x2ed .*kernel\/panic\.c:\d+/);
    expect(out).toMatch(/sysrq_handle_crash\+0x16\/0x20 .*drivers\/tty\/sysrq\.c:\d+/);
  }, 120_000);

  it('fetches an rt kernel: PREEMPT_RT, depmod-ed, an ELF vmlinux', async () => {
    const id = await sibling('rt');
    const r = await blockfarm(['kernels', 'fetch', id], env);
    expect(r.code, r.stderr).toBe(0);
    const k = (await loadFetched(id, env))!;
    expect(await readFile(k.config, 'utf8')).toMatch(/^CONFIG_PREEMPT_RT=y$/m);
    expect(await readFile(path.join(k.modulesDir, 'modules.dep'), 'utf8')).toMatch(/^kernel\/drivers\/md\/dm-crypt\.ko:/m);
    const h = await elfHeader(k.vmlinux);
    expect(h.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(h.readUInt16LE(18)).toBe(62);
    expect(k.dbgVmlinux).toBeUndefined();
  }, 600_000);
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
