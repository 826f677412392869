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
 */
import { readFile, readdir } from 'node:fs/promises';
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
}

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
  return {
    info,
    dir,
    vmlinux: path.join(dir, info.vmlinux),
    bzImage: path.join(dir, info.bzImage),
    config: path.join(dir, info.config),
    modulesRoot: path.join(dir, 'root'),
    modulesDir: path.join(dir, info.modules),
    dbgVmlinux: info.dbg ? path.join(dir, info.dbg.vmlinux) : undefined,
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
  const ids = names.filter((n) => parseKernelId(n)).sort(compareNewestFirst);
  const out: FetchedKernel[] = [];
  for (const id of ids) {
    const k = await loadFetched(id, env);
    if (k) out.push(k);
  }
  return out;
}

/** The newest fetched kernel (what `--target qemu` means), or undefined. */
export async function newestFetched(env: NodeJS.ProcessEnv = process.env): Promise<FetchedKernel | undefined> {
  return (await fetchedKernels(env))[0];
}
