/**
 * Fetched kernels on disk, one directory per kernel id under
 * <cache>/kernels/ (see paths.ts):
 *
 *   <ID>/kernel.json        metadata (KernelInfo); written last, so a kernel
 *                           without it was never completely fetched
 *   <ID>/vmlinux            the uncompressed ELF kernel, booted directly (PVH)
 *   <ID>/root/boot/vmlinuz-<ID>   the package's bzImage (for kernels that only boot that way)
 *   <ID>/root/boot/config-<ID>    its configuration
 *   <ID>/root/lib/modules/<ID>/   the module tree, with depmod's indexes
 *   <ID>/vmlinux-dbg        with --dbg: the vmlinux with debug info, for symbolized reports
 *   <ID>/root/lib/modules/<ID>/updates/   modules Debian's config leaves out,
 *                           built out of tree from Debian's source (extra-modules.ts)
 *
 * Kernels registered with `kernels add` or made by `kernels build` live
 * beside them under their own NAME (custom.ts): the same kernel.json with
 * origin 'added' or 'built', the image(s), and optionally config, System.map
 * and a module tree; paths left empty are absent (a kernel without modules
 * has everything built in).
 */
import { randomBytes } from 'node:crypto';
import { readFile, readdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { compareNewestFirst, parseKernelId } from './id.ts';
import { kernelsDir } from './paths.ts';

export interface KernelInfo {
  id: string;
  package: string;
  packageVersion: string;
  upstream: string;
  fetchedAt: string;
  /** sha256 of the .deb it was unpacked from. */
  debSha256: string;
  /** Relative to the kernel's directory. */
  vmlinux: string;
  bzImage: string;
  config: string;
  modules: string;
  dbg?: { packageVersion: string; vmlinux: string };
  /** Where the kernel came from (absent: a Debian package). */
  origin?: 'debian' | 'added' | 'built';
  /** The kernel's release (`uname -r`), when it differs from id (the module tree is lib/modules/<release>). */
  release?: string;
  /** Relative path of its System.map, when known. */
  systemMap?: string;
  /** added/built: the file it came from, or the source tree it was built from. */
  source?: string;
  /** Debian kernels: modules its config leaves out, built out of tree (extra-modules.ts). */
  extraModules?: ExtraModuleRecord[];
}

/** One module built out of tree for a Debian kernel, and from what. */
export interface ExtraModuleRecord {
  /** modprobe's name, e.g. dm-dust. */
  module: string;
  /** The option Debian's config leaves unset (without CONFIG_). */
  config: string;
  /** The .ko, relative to the kernel's directory. */
  file: string;
  sha256: string;
  /** modinfo's vermagic, equal to the kernel's own modules'. */
  vermagic: string;
  /** Files taken from the source package, relative to the tree. */
  sources: string[];
  sourcePackage: string;
  /** May differ from the kernel's packageVersion: the source installed on this machine. */
  sourceVersion: string;
  /** linux-headers-<ID> version it was built against (the kernel's own). */
  headersVersion: string;
  kbuildPackage: string;
  kbuildVersion: string;
  builtAt: string;
}

/** Write `<dir>/kernel.json` atomically (readers never see half of it). */
export async function writeKernelInfo(dir: string, info: KernelInfo): Promise<void> {
  const tmp = path.join(dir, `kernel.json.${process.pid}.${randomBytes(4).toString('hex')}`);
  await writeFile(tmp, `${JSON.stringify(info, null, 2)}\n`);
  await rename(tmp, path.join(dir, 'kernel.json'));
}

/** A fetched kernel with absolute paths. */
export interface FetchedKernel {
  info: KernelInfo;
  dir: string;
  vmlinux: string;
  bzImage: string;
  config: string;
  /** The root that holds lib/modules/<ID> (for depmod -b / modprobe -d). */
  modulesRoot: string;
  modulesDir: string;
  dbgVmlinux?: string;
  /** Absolute path of its System.map, when known. */
  systemMap?: string;
  /** False for a kernel registered without a module tree (everything it has is built in). */
  hasModules: boolean;
  /** False when no configuration is known. */
  hasConfig: boolean;
}

/** Names `kernels add` and `kernels build` accept (Debian ids are the fetched kernels' own). */
export const KERNEL_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

export function kernelDir(id: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(kernelsDir(env), id);
}

export async function loadFetched(id: string, env: NodeJS.ProcessEnv = process.env): Promise<FetchedKernel | undefined> {
  const dir = kernelDir(id, env);
  let info: KernelInfo;
  try {
    info = JSON.parse(await readFile(path.join(dir, 'kernel.json'), 'utf8')) as KernelInfo;
  } catch {
    return undefined;
  }
  if (info.id !== id) return undefined;
  const at = (rel: string) => (rel ? path.join(dir, rel) : '');
  return {
    info,
    dir,
    vmlinux: at(info.vmlinux),
    bzImage: at(info.bzImage),
    config: at(info.config),
    modulesRoot: path.join(dir, 'root'),
    modulesDir: at(info.modules),
    dbgVmlinux: info.dbg ? path.join(dir, info.dbg.vmlinux) : undefined,
    systemMap: info.systemMap ? path.join(dir, info.systemMap) : undefined,
    hasModules: Boolean(info.modules),
    hasConfig: Boolean(info.config),
  };
}

/** Every completely fetched kernel, newest first. */
export async function fetchedKernels(env: NodeJS.ProcessEnv = process.env): Promise<FetchedKernel[]> {
  let names: string[];
  try {
    names = await readdir(kernelsDir(env));
  } catch {
    return [];
  }
  const ids = names.filter((n) => parseKernelId(n) || KERNEL_NAME_RE.test(n)).sort(compareNewestFirst);
  const out: FetchedKernel[] = [];
  for (const id of ids) {
    const k = await loadFetched(id, env);
    if (k) out.push(k);
  }
  return out;
}

/** The newest fetched Debian kernel (what `--target qemu` means), or undefined. */
export async function newestFetched(env: NodeJS.ProcessEnv = process.env): Promise<FetchedKernel | undefined> {
  return (await fetchedKernels(env)).find((k) => parseKernelId(k.info.id) && (k.info.origin ?? 'debian') === 'debian');
}
