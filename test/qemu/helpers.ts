/**
 * Shared by the QEMU tests: the kernel they run on (fetched if the cache
 * lacks it, so the tests pass from nothing; they never skip for want of
 * one), and the CLI as users run it.
 */
import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import type { Case, Divergence } from '../../model/index.ts';
import { fileURLToPath } from 'node:url';
import { type FetchedKernel, fetchKernel, newestFetched } from '../../infra/kernels/index.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The kernel set-up fetches by default (infra/setup.sh). */
export const DEFAULT_KERNEL = '6.1.0-56-amd64';

let kernel: Promise<FetchedKernel> | undefined;

/**
 * BLOCKFARM_TEST_KERNEL, else the newest fetched kernel, else the default
 * one, fetched now. A kernel fetched before the fetch built the modules
 * Debian leaves out (dm-dust) gets them now; if that fails the kernel is
 * used as it is, and the tests that need them fail, naming what is missing.
 */
export function testKernel(): Promise<FetchedKernel> {
  kernel ??= (async () => {
    const want = process.env.BLOCKFARM_TEST_KERNEL;
    if (!want) {
      const have = await newestFetched();
      if (have) return fetchKernel(have.info.id).catch(() => have);
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

/** A seed's run as both the target API and `blockfarm run --json` give it. */
export interface SeedRun {
  kind: string;
  divergences?: Divergence[];
  message?: string;
}

const S1_EIO = new Set(['s1-loop-dio-ext4-lbs512', 's1-loop-dio-xfs-block-sizes', 's1-raid0-over-dio-loops']);

/**
 * What a seed must give on a Debian kernel: a pass, except for the kernel
 * behaviour documented in seeds.test.ts (S1's EIO on 6.1).
 */
export function checkSeedOutcome(name: string, c: Case, kernelId: string, o: SeedRun): void {
  const dump = JSON.stringify(o).slice(0, 2000);
  if (S1_EIO.has(name) && /^6\.1\.0-/.test(kernelId)) {
    expect(o.kind, dump).toBe('divergence');
    // Only the S1 failure: legal writes failing with EIO, and the loop device's I/O errors in the kernel log.
    for (const d of o.divergences ?? []) {
      if (d.class === 'kernel-log') expect(d.observed).toBe('I/O error on loopN');
      else expect([d.class, d.opKind, d.observed]).toEqual(['unexpected-error', 'write', 'EIO']);
    }
    expect((o.divergences ?? []).some((d) => d.class === 'unexpected-error'), dump).toBe(true);
    return;
  }
  expect(o.kind, dump).toBe('pass');
}
