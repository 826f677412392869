/**
 * Which cached directories (guest images, saved VM states) a live process
 * uses, so that pruning by another process leaves them alone. Several
 * processes share one cache (tests, benchmarks, farm workers of different
 * versions): one that builds a newer guest image must not delete the image
 * or the states another is booting or restoring VMs from.
 *
 *   <dir>/.users/<pid>    an empty file: process <pid> uses <dir>
 *
 * A marker stays for the life of its process (a dead process's marker
 * counts for nothing and is removed by the next marker written there).
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

const USERS = '.users';

/** Whether a process exists (ours or not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

async function livePids(dir: string): Promise<number[]> {
  const names = await readdir(path.join(dir, USERS)).catch(() => [] as string[]);
  return names.map(Number).filter((pid) => Number.isInteger(pid) && pid > 0 && processAlive(pid));
}

/** Mark `dir` as used by this process (and drop markers of dead ones). */
export async function markInUse(dir: string): Promise<void> {
  const users = path.join(dir, USERS);
  await mkdir(users, { recursive: true });
  await writeFile(path.join(users, String(process.pid)), '');
  for (const name of await readdir(users).catch(() => [] as string[])) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) await rm(path.join(users, name), { force: true });
  }
}

/** Whether a live process other than this one uses `dir`. */
export async function usedByOthers(dir: string): Promise<boolean> {
  return (await livePids(dir)).some((pid) => pid !== process.pid);
}

/** Remove `dir` unless another live process uses it; returns whether it was removed. */
export async function removeUnlessUsed(dir: string): Promise<boolean> {
  if (await usedByOthers(dir)) return false;
  await rm(dir, { recursive: true, force: true });
  return true;
}
