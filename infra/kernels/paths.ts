/**
 * Where infra/ keeps what it fetches and builds: one cache directory, the
 * project's own ignored `.cache/` unless BLOCKFARM_CACHE names another.
 *
 *   <cache>/kernels/<ID>/          one fetched kernel (see store.ts)
 *   <cache>/guest/<key>/           built guest images (infra/guest)
 *   <cache>/qemu/                  VM states and per-run scratch (worker/targets/qemu)
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const c = env.BLOCKFARM_CACHE?.trim();
  return c ? path.resolve(c) : path.join(PROJECT_ROOT, '.cache');
}

export function kernelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheRoot(env), 'kernels');
}
