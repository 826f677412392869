/**
 * Modules the case language needs that a Debian kernel's configuration
 * leaves out (bookworm's 6.1 kernels have `# CONFIG_DM_DUST is not set`),
 * built out of tree for a fetched Debian kernel from Debian's own source:
 *
 *   1. the module's files out of linux-source-6.1's tarball
 *      (/usr/src/linux-source-6.1.tar.xz, installed by infra/setup.sh),
 *      extracted once per source version into <cache>/extra-modules/src/;
 *   2. the kernel's headers: linux-headers-<ID>, the -common package it
 *      depends on (same version) and linux-kbuild-6.1, fetched with
 *      `apt-get download` into <cache>/extra-modules/debs/ and unpacked with
 *      dpkg-deb into a scratch root (the flavour's Makefile includes the
 *      -common one by an absolute /usr/src path: pointed at the scratch copy);
 *   3. `make -C <headers> M=<dir> modules` with the compiler Debian built the
 *      kernel with (linux-compiler-gcc-12-x86 names gcc-12), then
 *      `strip --strip-debug` as Debian does with its own modules;
 *   4. the .ko's vermagic compared with the kernel's own modules', its
 *      symbols and their CRCs checked against the headers' Module.symvers
 *      (depmod -e -E; Debian's System.map is a stub);
 *   5. installed as lib/modules/<ID>/updates/<module>.ko, depmod -b, and
 *      recorded in kernel.json (ExtraModuleRecord: which source package
 *      version, which headers).
 *
 * The source installed here may be newer than the kernel (one
 * linux-source-6.1 serves every 6.1.0-N kernel); the record says which it was.
 * Nothing outside the project's cache is written; the system's /usr/src and
 * /lib/modules are never touched. The guest image takes the module like any
 * other (its modules.dep lists it) and loads it unsigned, so the guest kernel
 * is tainted (O: out of tree, E: unsigned) from boot on.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type MachineCheck, type ProbeEnv, checkFile, checkTool } from '../machine.ts';
import { candidateVersions } from './catalog.ts';
import { KernelConfig } from './config.ts';
import { parseKernelId } from './id.ts';
import { cacheRoot } from './paths.ts';
import { ToolMissingError, lastLine, runTool } from './proc.ts';
import { type ExtraModuleRecord, type FetchedKernel, fetchedKernels, loadFetched, writeKernelInfo } from './store.ts';

/** A module Debian's configuration may leave out, and where its source is. */
export interface ExtraModuleSpec {
  /** modprobe's name; the object is `<module>.o`. */
  module: string;
  /** The option that would build it in tree (without CONFIG_). */
  config: string;
  /** Its files in the kernel tree; the .c files are its objects. */
  sources: readonly string[];
}

/** What the case language needs beyond Debian's configuration. Add a row for another module. */
export const EXTRA_MODULES: readonly ExtraModuleSpec[] = [{ module: 'dm-dust', config: 'DM_DUST', sources: ['drivers/md/dm-dust.c'] }];

export const SOURCE_PACKAGE = 'linux-source-6.1';
export const SOURCE_TARBALL = '/usr/src/linux-source-6.1.tar.xz';

/** An extra module cannot be built; the message is one line for people. */
export class ExtraModuleError extends Error {
  override name = 'ExtraModuleError';
}

/** A Debian kernel's tree on disk, possibly still in a fetch's scratch directory. */
export interface ExtraModuleTarget {
  id: string;
  /** Its Debian package version (the headers must be the same). */
  packageVersion: string;
  /** The kernel's directory (record paths are relative to it). */
  dir: string;
  /** The root holding lib/modules/<ID> and boot/. */
  modulesRoot: string;
  modulesDir: string;
  config: string;
  /** Records already made for this kernel. */
  have?: readonly ExtraModuleRecord[];
}

export interface ExtraModuleOptions {
  env?: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
  /** Which modules to consider. @defaultValue EXTRA_MODULES */
  specs?: readonly ExtraModuleSpec[];
  /** The source tarball. @defaultValue SOURCE_TARBALL */
  tarball?: string;
}

export function extraModulesDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheRoot(env), 'extra-modules');
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

const modName = (m: string) => m.replace(/-/g, '_');

/** Module names (underscores) the kernel's modules.dep and modules.builtin list, with the first in-tree .ko. */
async function kernelModuleIndex(modulesDir: string): Promise<{ names: Set<string>; firstInTree?: string }> {
  const names = new Set<string>();
  let firstInTree: string | undefined;
  for (const file of ['modules.dep', 'modules.builtin']) {
    const text = await readFile(path.join(modulesDir, file), 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      const ko = line.split(':')[0]!.trim();
      if (!ko) continue;
      names.add(modName(path.basename(ko).replace(/\.ko(\.(xz|zst|gz))?$/, '')));
      if (file === 'modules.dep' && !firstInTree && ko.startsWith('kernel/') && ko.endsWith('.ko')) firstInTree = ko;
    }
  }
  return { names, firstInTree };
}

/**
 * The specs this kernel needs built: its config leaves them out, its module
 * tree lacks them, and no intact record says they were built already.
 */
export async function extraModulesWanted(t: ExtraModuleTarget, specs: readonly ExtraModuleSpec[] = EXTRA_MODULES): Promise<ExtraModuleSpec[]> {
  const config = await KernelConfig.load(t.config);
  const { names } = await kernelModuleIndex(t.modulesDir);
  const out: ExtraModuleSpec[] = [];
  for (const s of specs) {
    if (config.enabled(s.config)) continue;
    const rec = t.have?.find((r) => r.module === s.module);
    if (rec && names.has(modName(s.module)) && (await exists(path.join(t.dir, rec.file))) && (await sha256(path.join(t.dir, rec.file))) === rec.sha256) continue;
    if (!rec && names.has(modName(s.module))) continue;
    out.push(s);
  }
  return out;
}

/** The installed version of a Debian package, or undefined. */
async function installedVersion(pkg: string): Promise<string | undefined> {
  const r = await runTool('dpkg-query', ['-W', '-f=${Version}', pkg]).catch(() => undefined);
  return r && r.code === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/** The source files of `specs`, extracted once per source version; returns the tree's root. */
async function extractSources(specs: readonly ExtraModuleSpec[], tarball: string, version: string, env: NodeJS.ProcessEnv): Promise<string> {
  const members = [...new Set(specs.flatMap((s) => s.sources))].sort();
  const key = createHash('sha256').update(JSON.stringify([tarball, version, members])).digest('hex').slice(0, 12);
  const dest = path.join(extraModulesDir(env), 'src', `${version.replace(/[^A-Za-z0-9.+~-]/g, '_')}-${key}`);
  if (await exists(path.join(dest, '.complete'))) return dest;
  const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdir(tmp, { recursive: true });
  try {
    // The tarball holds one top directory (linux-source-6.1/).
    const top = path.basename(tarball).replace(/\.tar(\.\w+)?$/, '');
    const r = await runTool('tar', ['-x', '-f', tarball, '-C', tmp, '--strip-components=1', ...members.map((m) => `${top}/${m}`)], { timeoutMs: 600_000 });
    if (r.code !== 0) throw new ExtraModuleError(`extracting ${members.join(', ')} from ${tarball} failed: ${lastLine(r)}`);
    await writeFile(path.join(tmp, '.complete'), `${tarball} ${version}\n${members.join('\n')}\n`);
    await rm(dest, { recursive: true, force: true });
    await rename(tmp, dest).catch(async (err: NodeJS.ErrnoException) => {
      // Another process extracted the same files first: theirs is as good.
      if (!(await exists(path.join(dest, '.complete')))) throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dest;
}

const debFileVersion = (v: string) => v.replace(/:/g, '%3a');

/** A package's .deb of exactly `version`, downloaded once into the cache. */
async function cachedDeb(pkg: string, version: string, env: NodeJS.ProcessEnv): Promise<string> {
  const dir = path.join(extraModulesDir(env), 'debs');
  await mkdir(dir, { recursive: true });
  const prefix = `${pkg}_${debFileVersion(version)}_`;
  const have = (await readdir(dir)).find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
  if (have) return path.join(dir, have);
  const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  try {
    // Running as root, apt would drop to _apt, which cannot write our cache directory.
    const r = await runTool('apt-get', ['-q', '-o', 'APT::Sandbox::User=root', 'download', `${pkg}=${version}`], { cwd: tmp, timeoutMs: 600_000 });
    if (r.code !== 0) throw new ExtraModuleError(`apt-get download ${pkg}=${version} failed: ${lastLine(r)}`);
    const got = (await readdir(tmp)).find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
    if (!got) throw new ExtraModuleError(`apt-get download ${pkg}=${version} left no .deb`);
    await rename(path.join(tmp, got), path.join(dir, got));
    return path.join(dir, got);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A .deb's control field. */
async function debField(deb: string, field: string): Promise<string> {
  const r = await runTool('dpkg-deb', ['-f', deb, field]);
  if (r.code !== 0) throw new ExtraModuleError(`dpkg-deb -f ${path.basename(deb)} ${field} failed: ${lastLine(r)}`);
  return r.stdout.trim();
}

export interface DebDependency {
  name: string;
  op?: string;
  version?: string;
}

/** `a (= 1), b (>= 2), c` as a list (alternatives: the first). */
export function parseDepends(text: string): DebDependency[] {
  return text
    .split(',')
    .map((d) => d.split('|')[0]!.trim())
    .filter(Boolean)
    .map((d) => {
      const m = /^([a-z0-9.+-]+)(?::\S+)?\s*(?:\(\s*(<<|<=|=|>=|>>)\s*([^)\s]+)\s*\))?$/.exec(d);
      if (!m) throw new ExtraModuleError(`cannot read the dependency '${d}'`);
      return m[2] ? { name: m[1]!, op: m[2], version: m[3]! } : { name: m[1]! };
    });
}

async function versionSatisfies(have: string, op: string, want: string): Promise<boolean> {
  const map: Record<string, string> = { '=': 'eq', '>=': 'ge', '<=': 'le', '>>': 'gt', '<<': 'lt' };
  const r = await runTool('dpkg', ['--compare-versions', have, map[op]!, want]);
  return r.code === 0;
}

/** The headers of kernel `id` unpacked under `root`; returns their directory and versions. */
async function unpackHeaders(id: string, kernelVersion: string, root: string, env: NodeJS.ProcessEnv, progress: (l: string) => void): Promise<{ dir: string; kbuild: [string, string]; compiler?: string }> {
  const pkg = `linux-headers-${id}`;
  const cand = (await candidateVersions([pkg])).get(pkg);
  if (!cand) throw new ExtraModuleError(`no package ${pkg} in the apt archive (run 'apt-get update'?)`);
  if (cand !== kernelVersion) throw new ExtraModuleError(`${pkg} is ${cand} in the archive but the kernel is ${kernelVersion}`);
  progress(`downloading ${pkg} ${cand} and what it depends on`);
  const debs: Array<[string, string, string]> = [[pkg, cand, await cachedDeb(pkg, cand, env)]];
  let compiler: string | undefined;
  let kbuild: [string, string] | undefined;
  for (const d of parseDepends(await debField(debs[0]![2], 'Depends'))) {
    const cc = /^linux-compiler-(gcc-\d+)-/.exec(d.name);
    if (cc) compiler = cc[1];
    if (!/^linux-(headers|kbuild)-/.test(d.name)) continue;
    const version = d.op === '=' ? d.version! : (await candidateVersions([d.name])).get(d.name);
    if (!version) throw new ExtraModuleError(`no package ${d.name} in the apt archive (needed by ${pkg})`);
    if (d.op && d.version && !(await versionSatisfies(version, d.op, d.version))) throw new ExtraModuleError(`${pkg} needs ${d.name} ${d.op} ${d.version}; the archive has ${version}`);
    debs.push([d.name, version, await cachedDeb(d.name, version, env)]);
    if (d.name.startsWith('linux-kbuild-')) kbuild = [d.name, version];
  }
  if (!kbuild) throw new ExtraModuleError(`${pkg} depends on no linux-kbuild package`);
  for (const [, , deb] of debs) {
    const x = await runTool('dpkg-deb', ['-x', deb, root]);
    if (x.code !== 0) throw new ExtraModuleError(`dpkg-deb -x ${path.basename(deb)} failed: ${lastLine(x)}`);
  }
  const dir = path.join(root, 'usr', 'src', pkg);
  // The flavour's Makefile is one line, `include /usr/src/linux-headers-<ABI>-common/Makefile`: point it here.
  const makefile = path.join(dir, 'Makefile');
  const text = await readFile(makefile, 'utf8').catch(() => {
    throw new ExtraModuleError(`${pkg} has no usr/src/${pkg}/Makefile`);
  });
  await writeFile(makefile, text.replace(/^(\s*include\s+)(\/usr\/src\/\S+)/gm, (_m, inc: string, p: string) => `${inc}${path.join(root, p)}`));
  return { dir, kbuild, compiler };
}

/** This process's environment without what would send kbuild elsewhere (another output tree, compiler or architecture). */
function makeEnv(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
  for (const k of ['KBUILD_OUTPUT', 'KBUILD_EXTMOD', 'O', 'M', 'ARCH', 'CROSS_COMPILE', 'CC', 'LD', 'LLVM', 'KCFLAGS', 'DEBIAN_KERNEL_USE_CCACHE']) delete out[k];
  return out;
}

/** `Kbuild` for one module: its .c files are its objects. */
function kbuildFile(spec: ExtraModuleSpec): string {
  const objs = spec.sources.filter((s) => s.endsWith('.c')).map((s) => path.basename(s).replace(/\.c$/, '.o'));
  if (objs.length === 1 && objs[0] === `${spec.module}.o`) return `obj-m := ${spec.module}.o\n`;
  return `obj-m := ${spec.module}.o\n${spec.module}-y := ${objs.join(' ')}\n`;
}

async function modinfoField(ko: string, field: string): Promise<string> {
  const r = await runTool('modinfo', ['-F', field, ko]);
  if (r.code !== 0) throw new ExtraModuleError(`modinfo ${path.basename(ko)} failed: ${lastLine(r)}`);
  return r.stdout.trim();
}

/** The compiler's error lines, or the last lines of make's output. */
function buildErrors(out: string): string {
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
  const errs = lines.filter((l) => /\berror\b|\*\*\*|not found|No such file/i.test(l));
  return (errs.length ? errs.slice(0, 3) : lines.slice(-2)).join(' / ');
}

/**
 * Build what `t` lacks of `specs` and install it into its module tree.
 * Returns every record the kernel has afterwards (kept and new), sorted by
 * module. Throws ExtraModuleError (or ToolMissingError) with one line.
 */
export async function buildExtraModules(t: ExtraModuleTarget, opts: ExtraModuleOptions = {}): Promise<ExtraModuleRecord[]> {
  const env = opts.env ?? process.env;
  const progress = opts.progress ?? (() => {});
  const specs = opts.specs ?? EXTRA_MODULES;
  const wanted = await extraModulesWanted(t, specs);
  const kept = (t.have ?? []).filter((r) => specs.some((s) => s.module === r.module) && !wanted.some((w) => w.module === r.module));
  if (!wanted.length) return kept;
  const names = wanted.map((s) => s.module).join(', ');
  if (!parseKernelId(t.id)) throw new ExtraModuleError(`${t.id} is not a Debian kernel id: extra modules are built for Debian kernels only`);
  const tarball = opts.tarball ?? SOURCE_TARBALL;
  if (!(await exists(tarball))) throw new ExtraModuleError(`building ${names} needs Debian's kernel source ${tarball}: apt-get install ${SOURCE_PACKAGE} (infra/setup.sh does)`);
  const sourceVersion = (await installedVersion(SOURCE_PACKAGE)) ?? 'unknown';
  const kernelVersion = t.packageVersion;

  await mkdir(extraModulesDir(env), { recursive: true });
  const scratch = path.join(extraModulesDir(env), `.tmp-${t.id}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(scratch);
  try {
    progress(`building ${names} (not in Debian's config) from ${SOURCE_PACKAGE} ${sourceVersion}`);
    const src = await extractSources(wanted, tarball, sourceVersion, env);
    const headers = await unpackHeaders(t.id, kernelVersion, path.join(scratch, 'headers'), env, progress);
    if (headers.compiler) await runTool(headers.compiler, ['--version']).catch((err: unknown) => {
      throw new ExtraModuleError(`${headers.compiler} not found: the kernel was built with it (apt-get install ${headers.compiler})${err instanceof ToolMissingError ? '' : ` (${String(err)})`}`);
    });
    const { firstInTree } = await kernelModuleIndex(t.modulesDir);
    if (!firstInTree) throw new ExtraModuleError(`kernel ${t.id} has no in-tree module to compare vermagic with (no modules.dep?)`);
    const kernelVermagic = await modinfoField(path.join(t.modulesDir, firstInTree), 'vermagic');
    const symvers = path.join(headers.dir, 'Module.symvers');
    const updates = path.join(t.modulesDir, 'updates');
    await mkdir(updates, { recursive: true });
    const records: ExtraModuleRecord[] = [];
    for (const spec of wanted) {
      const dir = path.join(scratch, 'build', spec.module);
      await mkdir(dir, { recursive: true });
      for (const f of spec.sources) await copyFile(path.join(src, f), path.join(dir, path.basename(f)));
      await writeFile(path.join(dir, 'Kbuild'), kbuildFile(spec));
      progress(`make ${spec.module}.ko against ${path.basename(headers.dir)}`);
      const m = await runTool('make', ['-C', headers.dir, `M=${dir}`, 'modules'], { env: makeEnv(), timeoutMs: 600_000 });
      const ko = path.join(dir, `${spec.module}.ko`);
      if (m.code !== 0 || !(await exists(ko))) throw new ExtraModuleError(`building ${spec.module}.ko against linux-headers-${t.id} failed: ${buildErrors(`${m.stdout}\n${m.stderr}`)}`);
      // As Debian installs its modules (INSTALL_MOD_STRIP): without debug info, 25 KB instead of 360 KB in every guest image.
      const st = await runTool('strip', ['--strip-debug', ko]);
      if (st.code !== 0) throw new ExtraModuleError(`strip --strip-debug ${spec.module}.ko failed: ${lastLine(st)}`);
      const vermagic = await modinfoField(ko, 'vermagic');
      if (vermagic !== kernelVermagic) throw new ExtraModuleError(`${spec.module}.ko has vermagic '${vermagic}', the kernel's modules '${kernelVermagic}'`);
      const final = path.join(updates, `${spec.module}.ko`);
      const tmp = `${final}.tmp-${process.pid}`;
      await copyFile(ko, tmp);
      await rename(tmp, final);
      records.push({
        module: spec.module,
        config: spec.config,
        file: path.relative(t.dir, final),
        sha256: await sha256(final),
        vermagic,
        sources: [...spec.sources],
        sourcePackage: SOURCE_PACKAGE,
        sourceVersion,
        headersVersion: kernelVersion,
        kbuildPackage: headers.kbuild[0],
        kbuildVersion: headers.kbuild[1],
        builtAt: new Date().toISOString(),
      });
    }
    // -e -E: a symbol the kernel does not export, or exports with another CRC, shows here rather than at modprobe in a guest.
    const d = await runTool('depmod', ['-b', t.modulesRoot, ...((await exists(symvers)) ? ['-e', '-E', symvers] : []), t.id]);
    const unknown = d.stderr.split('\n').find((l) => /unknown symbol|disagrees about version/i.test(l) && records.some((r) => l.includes(path.basename(r.file))));
    if (d.code !== 0) throw new ExtraModuleError(`depmod -b ${t.modulesRoot} ${t.id} failed: ${lastLine(d)}`);
    if (unknown) {
      for (const r of records) await rm(path.join(t.dir, r.file), { force: true });
      await runTool('depmod', ['-b', t.modulesRoot, t.id]);
      throw new ExtraModuleError(`the built module does not link against kernel ${t.id}: ${unknown.trim()}`);
    }
    progress(`built ${records.map((r) => `${r.module} (${r.sourcePackage} ${r.sourceVersion})`).join(', ')} into ${path.relative(t.dir, updates)}`);
    return [...kept, ...records].sort((a, b) => (a.module < b.module ? -1 : 1));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

const targetOf = (k: FetchedKernel): ExtraModuleTarget => ({
  id: k.info.id, packageVersion: k.info.packageVersion, dir: k.dir, modulesRoot: k.modulesRoot, modulesDir: k.modulesDir, config: k.config, have: k.info.extraModules,
});

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Run `fn` holding `<dir>/.extra-modules.lock` (a directory naming its
 * owner's pid): test files and workers that find the same kernel without its
 * modules at once build them one after another, not over each other. A lock
 * whose owner died is taken over.
 */
async function withKernelLock<T>(dir: string, fn: () => Promise<T>, waitMs = 15 * 60_000): Promise<T> {
  const lock = path.join(dir, '.extra-modules.lock');
  const until = Date.now() + waitMs;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(path.join(lock, 'pid'), `${process.pid}\n`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number((await readFile(path.join(lock, 'pid'), 'utf8').catch(() => '')).trim());
      const age = Date.now() - ((await stat(lock).catch(() => undefined))?.mtimeMs ?? Date.now());
      // No pid yet: its owner is between mkdir and writeFile, unless that was long ago.
      if ((owner && !pidAlive(owner)) || (!owner && age > 60_000)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > until) throw new ExtraModuleError(`another process (pid ${owner || '?'}) has been building the extra modules of ${path.basename(dir)} for too long (${lock})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** For a fetched Debian kernel: build what it lacks and record it in its kernel.json. */
export async function ensureExtraModules(k: FetchedKernel, opts: ExtraModuleOptions = {}): Promise<FetchedKernel> {
  if ((k.info.origin ?? 'debian') !== 'debian' || !k.hasModules || !k.hasConfig) return k;
  if (!(await extraModulesWanted(targetOf(k), opts.specs)).length) return k;
  return withKernelLock(k.dir, async () => {
    // Someone else may have built them while this process waited for the lock.
    const now = (await loadFetched(k.info.id, opts.env)) ?? k;
    if (!(await extraModulesWanted(targetOf(now), opts.specs)).length) return now;
    const records = await buildExtraModules(targetOf(now), opts);
    await writeKernelInfo(now.dir, { ...now.info, extraModules: records });
    return (await loadFetched(k.info.id, opts.env)) ?? now;
  });
}

/** One line per record for people: `dm-dust from linux-source-6.1 6.1.192-2 (kernel 6.1.170-3)`. */
export function describeExtraModule(r: ExtraModuleRecord): string {
  const differs = r.sourceVersion !== r.headersVersion ? ` (kernel ${r.headersVersion})` : '';
  return `${r.module} from ${r.sourcePackage} ${r.sourceVersion}${differs}`;
}

/** What building the extra modules needs, for `blockfarm doctor`, and whether each fetched Debian kernel has them. */
export async function extraModuleChecks(env: ProbeEnv, cacheEnv: NodeJS.ProcessEnv = process.env): Promise<MachineCheck[]> {
  const names = EXTRA_MODULES.map((s) => s.module).join(', ');
  const checks: MachineCheck[] = [
    { ...(await checkFile(`Debian kernel source (builds ${names})`, SOURCE_TARBALL, SOURCE_PACKAGE, env)), optional: true },
    { ...(await checkTool('make', 'make', env, true)), what: `make (builds ${names})` },
  ];
  for (const k of await fetchedKernels(cacheEnv)) {
    if ((k.info.origin ?? 'debian') !== 'debian' || !k.hasConfig) continue;
    const what = `${names} for ${k.info.id}`;
    const wanted = await extraModulesWanted(targetOf(k)).catch(() => EXTRA_MODULES.slice());
    if (!wanted.length) {
      const built = (k.info.extraModules ?? []).map(describeExtraModule);
      checks.push({ what, status: 'ok', detail: built.length ? `built: ${built.join(', ')}` : 'in the kernel' });
      continue;
    }
    const pkg = `linux-headers-${k.info.id}`;
    const headers = await candidateVersions([pkg]).catch(() => new Map<string, string>());
    const v = headers.get(pkg);
    checks.push(
      v === k.info.packageVersion
        ? { what, status: 'missing', optional: true, detail: `not built; ${pkg} ${v} is in the archive`, fix: `blockfarm kernels fetch ${k.info.id}` }
        : { what, status: 'missing', optional: true, detail: v ? `${pkg} is ${v} in the archive, the kernel ${k.info.packageVersion}: cannot build` : `the headers cannot be had: no ${pkg} in the apt archive`, fix: v ? 'fetch the kernel the archive has headers for' : "apt-get update, or a mirror that keeps the kernel's headers" },
    );
  }
  return checks;
}
