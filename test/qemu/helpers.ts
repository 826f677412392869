/**
 * Shared by the QEMU tests: the kernel they run on (fetched if the cache
 * lacks it, so the tests pass from nothing; they never skip for want of
 * one), and the CLI as users run it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type FetchedKernel, fetchKernel, newestFetched } from '../../infra/kernels/index.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The kernel set-up fetches by default (infra/setup.sh). */
export const DEFAULT_KERNEL = '6.1.0-56-amd64';

let kernel: Promise<FetchedKernel> | undefined;

/** BLOCKFARM_TEST_KERNEL, else the newest fetched kernel, else the default one, fetched now. */
export function testKernel(): Promise<FetchedKernel> {
  kernel ??= (async () => {
    const want = process.env.BLOCKFARM_TEST_KERNEL;
    if (!want) {
      const have = await newestFetched();
      if (have) return have;
    }
    return fetchKernel(want ?? DEFAULT_KERNEL);
  })();
  return kernel;
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function blockfarm(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/blockfarm.js', ...args], {
      cwd: ROOT,
      env: { ...process.env, BLOCKFARM_LOG_FORMAT: 'json', BLOCKFARM_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export const lines = (s: string): string[] => s.split('\n').filter((l) => l.length > 0);
