/**
 * `blockfarm kernels add NAME --kernel PATH [--modules DIR] [--config PATH]
 * [--system-map PATH]`: registers any x86-64 kernel beside the fetched
 * Debian ones (store.ts), so that `qemu:NAME` works wherever `qemu:<id>`
 * does. The image is copied in as it is: a bzImage is booted as a bzImage,
 * an ELF vmlinux with the PVH note directly (image.ts says which). Without a
 * module tree the kernel is taken to have built in what it has; with a
 * config, what a case needs is checked against it.
 *
 *   <cache>/kernels/<NAME>/kernel.json   origin 'added' (or 'built': build.ts)
 *   <NAME>/bzImage | <NAME>/vmlinux      the image
 *   <NAME>/config, <NAME>/System.map     when given (System.map also from the vmlinux's own symbols)
 *   <NAME>/root/lib/modules/<release>/   the module tree, depmod-ed
 *
 * Like fetch.ts, everything is assembled in a scratch directory and renamed
 * into place, so a half-added kernel never looks added.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KernelConfig } from './config.ts';
import { parseKernelId } from './id.ts';
import { type KernelImageFacts, KernelImageError, kernelImageFacts } from './image.ts';
import { cacheRoot, kernelsDir } from './paths.ts';
import { lastLine, runTool } from './proc.ts';
import { type FetchedKernel, type KernelInfo, KERNEL_NAME_RE, kernelDir, loadFetched } from './store.ts';

/** A kernel that cannot be added; the message is one line for people. */
export class KernelAddError extends Error {
  override name = 'KernelAddError';
  constructor(
    message: string,
    /** Bad input (2) or a failure of this machine (4). */
    readonly badInput = true,
  ) {
    super(message);
  }
}

export interface AddKernelOptions {
  /** bzImage or ELF vmlinux. */
  kernel: string;
  /** lib/modules/<release>, or a root that holds lib/modules/<release>. */
  modules?: string;
  config?: string;
  systemMap?: string;
  /** A vmlinux with DWARF (a build with debug info): file:line in reports. */
  debugVmlinux?: string;
  /** Replace a kernel already registered under NAME. */
  force?: boolean;
  origin?: 'added' | 'built';
  /** What it was built from (build.ts). */
  source?: string;
  env?: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
}

/** Why NAME cannot name an own kernel, or undefined. */
export function kernelNameProblem(name: string): string | undefined {
  if (!KERNEL_NAME_RE.test(name)) return `'${name}' is not a kernel name: use letters, digits and . _ + - (at most 64, starting with a letter or digit)`;
  if (parseKernelId(name)) return `'${name}' is a Debian kernel id: fetch it with 'blockfarm kernels fetch ${name}', or choose another name`;
  return undefined;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function isFile(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** The lib/modules/<release> directory of `dir` for this release, whichever form it was given in. */
async function moduleTreeOf(dir: string, release: string | undefined): Promise<{ tree: string; release: string }> {
  if (!(await isDir(dir))) throw new KernelAddError(`--modules ${dir}: not a directory`);
  const base = path.basename(path.resolve(dir));
  const looksLikeTree = (await isFile(path.join(dir, 'modules.order'))) || (await isDir(path.join(dir, 'kernel')));
  if (looksLikeTree) {
    if (release && base !== release) throw new KernelAddError(`--modules ${dir} is for release '${base}', but the kernel is '${release}' (modprobe looks in lib/modules/${release})`);
    return { tree: dir, release: release ?? base };
  }
  const under = path.join(dir, 'lib', 'modules');
  const releases = (await isDir(under)) ? await readdir(under) : [];
  if (release && releases.includes(release)) return { tree: path.join(under, release), release };
  if (!release && releases.length === 1) return { tree: path.join(under, releases[0]!), release: releases[0]! };
  throw new KernelAddError(
    `--modules ${dir}: no module tree for release '${release ?? '?'}' (expected modules.order there, or lib/modules/${release ?? '<release>'}/ under it${releases.length ? `; found ${releases.join(', ')}` : ''})`,
  );
}

/** Check the image and say how it will boot; throws KernelAddError for a file that is no bootable kernel. */
export async function inspectKernelImage(file: string): Promise<KernelImageFacts> {
  try {
    const facts = await kernelImageFacts(file);
    if (facts.kind === 'vmlinux' && !facts.pvh)
      throw new KernelAddError(`${file}: an ELF vmlinux without the PVH entry note (CONFIG_PVH) cannot be booted directly; give its bzImage (arch/x86/boot/bzImage) instead`);
    return facts;
  } catch (err) {
    if (err instanceof KernelImageError) throw new KernelAddError(err.message.startsWith(file) ? err.message : `${file}: ${err.message}`);
    throw err;
  }
}

export async function addKernel(name: string, opts: AddKernelOptions): Promise<FetchedKernel> {
  const problem = kernelNameProblem(name);
  if (problem) throw new KernelAddError(problem);
  const env = opts.env ?? process.env;
  const final = kernelDir(name, env);
  if (!opts.force && (await loadFetched(name, env))) throw new KernelAddError(`a kernel named '${name}' is already registered (${final}); use --force to replace it`);
  const facts = await inspectKernelImage(opts.kernel);
  if (opts.config && !(await isFile(opts.config))) throw new KernelAddError(`--config ${opts.config}: no such file`);
  if (opts.config && (await KernelConfig.load(opts.config)).size === 0) throw new KernelAddError(`--config ${opts.config}: not a kernel configuration (no CONFIG_ lines)`);
  if (opts.systemMap && !(await isFile(opts.systemMap))) throw new KernelAddError(`--system-map ${opts.systemMap}: no such file`);
  const modules = opts.modules ? await moduleTreeOf(opts.modules, facts.release) : undefined;
  const release = facts.release ?? modules?.release;

  await mkdir(kernelsDir(env), { recursive: true });
  const scratch = path.join(kernelsDir(env), `.tmp-${name}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(scratch);
  try {
    const image = facts.kind === 'bzImage' ? 'bzImage' : 'vmlinux';
    opts.progress?.(`copying the ${facts.kind}${facts.kind === 'vmlinux' ? ' (PVH: booted directly)' : ''}${release ? ` of ${release}` : ''}`);
    await copyFile(opts.kernel, path.join(scratch, image));
    const info: KernelInfo = {
      id: name,
      package: '',
      packageVersion: '',
      upstream: release ?? 'unknown',
      fetchedAt: new Date().toISOString(),
      debSha256: await sha256(opts.kernel),
      // A bzImage-only kernel boots the same file whichever the target tries first.
      vmlinux: image,
      bzImage: image,
      config: '',
      modules: '',
      origin: opts.origin ?? 'added',
      source: path.resolve(opts.source ?? opts.kernel),
    };
    if (release && release !== name) info.release = release;
    if (opts.config) {
      await copyFile(opts.config, path.join(scratch, 'config'));
      info.config = 'config';
    }
    if (opts.systemMap) {
      await copyFile(opts.systemMap, path.join(scratch, 'System.map'));
      info.systemMap = 'System.map';
    } else if (facts.kind === 'vmlinux' && facts.symbols) {
      const nm = await runTool('nm', ['-n', opts.kernel]);
      if (nm.code === 0) {
        await writeFile(path.join(scratch, 'System.map'), nm.stdout);
        info.systemMap = 'System.map';
      }
    }
    if (opts.debugVmlinux) {
      await copyFile(opts.debugVmlinux, path.join(scratch, 'vmlinux-dbg'));
      info.dbg = { packageVersion: '', vmlinux: 'vmlinux-dbg' };
    }
    if (modules) {
      opts.progress?.(`copying the module tree of ${modules.release}`);
      const dest = path.join(scratch, 'root', 'lib', 'modules', modules.release);
      await mkdir(path.dirname(dest), { recursive: true });
      // Links (build/, source/) point into someone's tree: -L would copy it whole, so they are dropped.
      const cp = await runTool('cp', ['-r', '--no-dereference', modules.tree, dest]);
      if (cp.code !== 0) throw new KernelAddError(`copying ${modules.tree} failed: ${lastLine(cp)}`, false);
      for (const l of ['build', 'source']) await rm(path.join(dest, l), { force: true });
      const d = await runTool('depmod', ['-b', path.join(scratch, 'root'), modules.release]);
      if (d.code !== 0) throw new KernelAddError(`depmod for ${modules.release} failed: ${lastLine(d)}`, false);
      info.modules = path.join('root', 'lib', 'modules', modules.release);
      if (!info.release) info.release = modules.release;
    }
    await writeFile(path.join(scratch, 'kernel.json'), `${JSON.stringify(info, null, 2)}\n`);
    if (opts.force) await rm(final, { recursive: true, force: true });
    await rename(scratch, final).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      throw new KernelAddError(`a kernel named '${name}' was registered meanwhile; use --force to replace it`);
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const k = await loadFetched(name, env);
  if (!k) throw new KernelAddError(`${name}: registered, but ${final} is incomplete`, false);
  return k;
}

/** Remove an own kernel (never a fetched Debian one: `kernels fetch --force` replaces those). */
export async function removeKernel(name: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const k = await loadFetched(name, env);
  if (!k || (k.info.origin ?? 'debian') === 'debian') return false;
  await rm(k.dir, { recursive: true, force: true });
  // Its guest images (<cache>/guest/NAME-<key>) and saved VM states (<cache>/qemu/states/NAME-<image>-<state>) go with it.
  const esc = name.replace(/[.+]/g, '\\$&');
  const leftovers: Array<[string, RegExp]> = [
    [path.join(cacheRoot(env), 'guest'), new RegExp(`^${esc}-[0-9a-f]{16}$`)],
    [path.join(cacheRoot(env), 'qemu', 'states'), new RegExp(`^${esc}-[0-9a-f]{16}-[0-9a-f]{16}$`)],
  ];
  for (const [dir, re] of leftovers) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names) if (re.test(n)) await rm(path.join(dir, n), { recursive: true, force: true });
  }
  return true;
}
