/**
 * Modules Debian's config leaves out (dm-dust), built out of tree when a
 * Debian kernel is fetched (infra/kernels/extra-modules.ts): the test
 * kernel has it, recorded with the source package version and checked
 * against the kernel (vermagic, modules.dep); a build into a copy of the
 * kernel's tree from nothing; and the one-line errors when the source or the
 * headers cannot be had.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtraModuleError, type ExtraModuleTarget, buildExtraModules, ensureExtraModules, extraModuleChecks, extraModulesWanted, parseDepends } from '../../infra/kernels/extra-modules.ts';
import { defaultProbeEnv } from '../../infra/machine.ts';
import { runTool } from '../../infra/kernels/proc.ts';
import { type FetchedKernel, loadFetched } from '../../infra/kernels/store.ts';
import { ROOT, blockfarm, testKernel } from '../qemu/helpers.ts';

let k: FetchedKernel;
// Under the project's ignored .cache/, beside what it copies (hard links need one filesystem).
const scratch = path.join(ROOT, '.cache', `test-extra-modules-${process.pid}`);

beforeAll(async () => {
  k = await testKernel();
}, 600_000);

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

const sha256 = async (f: string) => createHash('sha256').update(await readFile(f)).digest('hex');
const vermagic = async (ko: string) => (await runTool('modinfo', ['-F', 'vermagic', ko])).stdout.trim();

/** A copy of the test kernel's module tree and boot files (hard links; depmod and the build replace files, never write into them). */
async function copyOfKernel(name: string, withDust: boolean): Promise<ExtraModuleTarget> {
  const dir = path.join(scratch, name);
  await mkdir(dir, { recursive: true });
  const r = await runTool('cp', ['-al', k.modulesRoot, path.join(dir, 'root')]);
  expect(r.code, r.stderr).toBe(0);
  const modulesDir = path.join(dir, path.relative(k.dir, k.modulesDir));
  if (!withDust) {
    await rm(path.join(modulesDir, 'updates'), { recursive: true, force: true });
    expect((await runTool('depmod', ['-b', path.join(dir, 'root'), k.info.id])).code).toBe(0);
  }
  return { id: k.info.id, packageVersion: k.info.packageVersion, dir, modulesRoot: path.join(dir, 'root'), modulesDir, config: path.join(dir, path.relative(k.dir, k.config)) };
}

describe('dm-dust for a Debian kernel', () => {
  it('the fetched kernel has it: built from linux-source-6.1, recorded, vermagic of the kernel, in modules.dep after dm-mod', async () => {
    expect(await readFile(k.config, 'utf8')).toMatch(/^# CONFIG_DM_DUST is not set$/m);
    const rec = k.info.extraModules?.find((r) => r.module === 'dm-dust');
    expect(rec, 'kernel.json records dm-dust').toBeDefined();
    // The source installed when it was built (the next test checks it is the installed one).
    expect(rec).toMatchObject({ config: 'DM_DUST', sources: ['drivers/md/dm-dust.c'], sourcePackage: 'linux-source-6.1', sourceVersion: expect.stringMatching(/^6\.1\.\d+-\d+$/), headersVersion: k.info.packageVersion });
    const ko = path.join(k.dir, rec!.file);
    expect(rec!.file).toBe(path.join(path.relative(k.dir, k.modulesDir), 'updates', 'dm-dust.ko'));
    expect(await sha256(ko)).toBe(rec!.sha256);
    const own = await vermagic(path.join(k.modulesDir, 'kernel', 'drivers', 'md', 'dm-mod.ko'));
    expect(await vermagic(ko)).toBe(own);
    expect(rec!.vermagic).toBe(own);
    expect((await runTool('modinfo', ['-F', 'name', ko])).stdout.trim()).toBe('dm_dust');
    expect(await readFile(path.join(k.modulesDir, 'modules.dep'), 'utf8')).toMatch(/^updates\/dm-dust\.ko: kernel\/drivers\/md\/dm-mod\.ko$/m);
    // modprobe (what the guest runs) resolves it in this tree.
    const probe = await runTool('modprobe', ['-d', k.modulesRoot, '-S', k.info.id, '--show-depends', 'dm-dust']);
    expect(probe.stdout).toMatch(/insmod \S+\/updates\/dm-dust\.ko/);
  });

  it('kernels list shows what it was built from', async () => {
    const r = await blockfarm(['kernels', 'list', '--json']);
    const row = (JSON.parse(r.stdout) as { kernels: Array<{ id: string; extraModules?: Array<{ module: string; sourceVersion: string; kernelVersion: string; sameVersion: boolean }> }> }).kernels.find((x) => x.id === k.info.id);
    const rec = k.info.extraModules!.find((x) => x.module === 'dm-dust')!;
    expect(row?.extraModules).toEqual([expect.objectContaining({ module: 'dm-dust', sourceVersion: rec.sourceVersion, kernelVersion: k.info.packageVersion, sameVersion: rec.sourceVersion === k.info.packageVersion })]);
    expect((await blockfarm(['kernels', 'list'])).stdout).toMatch(new RegExp(`^${k.info.id.replace(/\./g, '\\.')}\\s.*dm-dust from linux-source-6\\.1 ${rec.sourceVersion.replace(/\./g, '\\.')}`, 'm'));
  });

  it('builds into a tree that lacks it, and a second call with the record builds nothing', async () => {
    const t = await copyOfKernel('fresh', false);
    expect((await extraModulesWanted(t)).map((s) => s.module)).toEqual(['dm-dust']);
    const lines: string[] = [];
    const records = await buildExtraModules(t, { progress: (l) => lines.push(l) });
    expect(records.map((r) => r.module)).toEqual(['dm-dust']);
    expect(records[0]!.sourceVersion).toBe((await runTool('dpkg-query', ['-W', '-f=${Version}', 'linux-source-6.1'])).stdout.trim());
    expect(lines.join('\n')).toMatch(/make dm-dust\.ko against linux-headers-/);
    const ko = path.join(t.dir, records[0]!.file);
    expect(await vermagic(ko)).toBe(await vermagic(path.join(t.modulesDir, 'kernel', 'drivers', 'md', 'dm-mod.ko')));
    expect(await readFile(path.join(t.modulesDir, 'modules.dep'), 'utf8')).toMatch(/^updates\/dm-dust\.ko: kernel\/drivers\/md\/dm-mod\.ko$/m);
    // The test kernel's own tree is untouched by the copy's build.
    expect(await sha256(path.join(k.dir, k.info.extraModules![0]!.file))).toBe(k.info.extraModules![0]!.sha256);
    const again = { ...t, have: records };
    expect(await extraModulesWanted(again)).toEqual([]);
    expect(await buildExtraModules(again)).toEqual(records);
    // A record whose .ko was lost is built again.
    await rm(ko);
    expect((await extraModulesWanted(again)).map((s) => s.module)).toEqual(['dm-dust']);
  }, 300_000);

  it('a kernel fetched before gets it once, also when two callers find it missing at the same time', async () => {
    // A cache of its own holding a copy of the test kernel as an older fetch left it: no updates/, no record.
    const env = { ...process.env, BLOCKFARM_CACHE: path.join(scratch, 'cache') };
    const dir = path.join(scratch, 'cache', 'kernels', k.info.id);
    await mkdir(path.dirname(dir), { recursive: true });
    expect((await runTool('cp', ['-al', k.dir, dir])).code).toBe(0);
    await rm(path.join(dir, path.relative(k.dir, k.modulesDir), 'updates'), { recursive: true, force: true });
    expect((await runTool('depmod', ['-b', path.join(dir, 'root'), k.info.id])).code).toBe(0);
    await rm(path.join(dir, 'kernel.json'));
    await writeFile(path.join(dir, 'kernel.json'), JSON.stringify({ ...k.info, extraModules: undefined }));
    const old = (await loadFetched(k.info.id, env))!;
    expect(old.info.extraModules).toBeUndefined();
    const makes: string[] = [];
    const progress = (l: string) => void (/^make /.test(l) && makes.push(l));
    const [a, b] = await Promise.all([ensureExtraModules(old, { env, progress }), ensureExtraModules(old, { env, progress })]);
    expect(makes).toHaveLength(1);
    expect(a.info.extraModules).toEqual(b.info.extraModules);
    expect((await loadFetched(k.info.id, env))!.info.extraModules).toEqual(a.info.extraModules);
    expect(await sha256(path.join(dir, a.info.extraModules![0]!.file))).toBe(a.info.extraModules![0]!.sha256);
    // Stripped of debug info, as Debian's own modules are.
    expect((await runTool('readelf', ['-S', '-W', path.join(dir, a.info.extraModules![0]!.file)])).stdout).not.toMatch(/\.debug_info/);
  }, 300_000);

  it('says in one line when the source or the headers cannot be had', async () => {
    const t = await copyOfKernel('errors', false);
    const noSource = buildExtraModules(t, { tarball: '/nonexistent/linux-source-6.1.tar.xz' });
    await expect(noSource).rejects.toThrow(ExtraModuleError);
    await expect(noSource).rejects.toThrow(/^building dm-dust needs Debian's kernel source \/nonexistent\/linux-source-6\.1\.tar\.xz: apt-get install linux-source-6\.1/);
    const noHeaders = buildExtraModules({ ...t, id: '6.1.0-999-amd64' });
    await expect(noHeaders).rejects.toThrow(/^no package linux-headers-6\.1\.0-999-amd64 in the apt archive/);
    const otherVersion = buildExtraModules({ ...t, packageVersion: '6.1.1-1' });
    await expect(otherVersion).rejects.toThrow(/^linux-headers-\S+ is \S+ in the archive but the kernel is 6\.1\.1-1$/);
    for (const p of [noSource, noHeaders, otherVersion]) expect((await p.catch((e: Error) => e.message)) as string).not.toMatch(/\n/);
  }, 120_000);
});

describe('blockfarm doctor', () => {
  it('says which fetched kernels have dm-dust, and when the headers of one cannot be had', async () => {
    // A kernel the archive has no headers for: the test kernel's tree under an id the archive does not know.
    const env = { ...process.env, BLOCKFARM_CACHE: path.join(scratch, 'doctor') };
    const id = '6.1.0-999-amd64';
    const dir = path.join(scratch, 'doctor', 'kernels', id);
    await mkdir(dir, { recursive: true });
    expect((await runTool('cp', ['-al', k.modulesRoot, path.join(dir, 'root')])).code).toBe(0);
    await rm(path.join(dir, path.relative(k.dir, k.modulesDir), 'updates'), { recursive: true, force: true });
    expect((await runTool('depmod', ['-b', path.join(dir, 'root'), k.info.id])).code).toBe(0);
    await writeFile(path.join(dir, 'kernel.json'), JSON.stringify({ ...k.info, id, extraModules: undefined }));
    const checks = await extraModuleChecks(defaultProbeEnv(), env);
    expect(checks.find((c) => c.what === `dm-dust for ${id}`)).toMatchObject({ status: 'missing', optional: true, detail: `the headers cannot be had: no linux-headers-${id} in the apt archive` });
    const own = await extraModuleChecks(defaultProbeEnv());
    expect(own.find((c) => c.what === `dm-dust for ${k.info.id}`)).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^built: dm-dust from linux-source-6\.1 /) });
  });
});

describe('reading a headers package', () => {
  it("parses its Depends: exact and minimum versions, alternatives, arch qualifiers", () => {
    expect(parseDepends('linux-headers-6.1.0-56-common (= 6.1.192-2), linux-kbuild-6.1 (>= 6.1.192-2), linux-compiler-gcc-12-x86')).toEqual([
      { name: 'linux-headers-6.1.0-56-common', op: '=', version: '6.1.192-2' },
      { name: 'linux-kbuild-6.1', op: '>=', version: '6.1.192-2' },
      { name: 'linux-compiler-gcc-12-x86' },
    ]);
    expect(parseDepends('a | b, c:amd64 (<< 2)')).toEqual([{ name: 'a' }, { name: 'c', op: '<<', version: '2' }]);
    expect(() => parseDepends('Not A Package')).toThrow(/cannot read the dependency 'Not A Package'/);
  });
});
