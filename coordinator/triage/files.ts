/** Small file helpers for triage's part of the data directory: atomic writes, JSON reads, safe folder names. */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { isSignatureId } from './signature.ts';

/** Write through a temporary file renamed into place: a reader never sees half a file. */
export async function writeFileAtomic(path: string, content: string | Uint8Array, mode?: number): Promise<void> {
  await fsp.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await fsp.writeFile(tmp, content, mode !== undefined ? { mode } : undefined);
  await fsp.rename(tmp, path);
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fsp.readFile(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The folder of one signature under `root` (data/reports). The id must be
 * one signatureId makes ([a-z0-9-], no dots or slashes), and the resolved
 * path must stay inside root: a signature never names a path elsewhere.
 */
export function signatureDir(root: string, id: string): string {
  if (!isSignatureId(id)) throw new Error(`not a signature id: ${JSON.stringify(id).slice(0, 80)}`);
  const base = resolve(root);
  const dir = resolve(base, id);
  if (!dir.startsWith(base + sep)) throw new Error(`signature id ${id} leaves ${base}`);
  return dir;
}

/**
 * <data>/reports: one folder per signature (the record, its cases and its
 * report). The farm's data directory layout names it so (README, retention
 * category 'reports').
 */
export function signaturesRoot(dataDir: string): string {
  return join(resolve(dataDir), 'reports');
}

/** Serialize async critical sections (read-modify-write of one store). */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
