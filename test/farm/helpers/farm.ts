/**
 * Farm processes for the tests: `blockfarm worker` / `coordinator` as real
 * child processes (tracked by PID, killed in cleanup), and an in-process
 * coordinator with a test namespace.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { createLogger } from '../../../infra/log.ts';
import { parseRedisUrl, redisOptions } from '../../../infra/redis/connection.ts';
import { type WorkerInfo, liveWorkers } from '../../../worker/farm/registry.ts';
import { type TestRedis, startTestRedis } from './redis.ts';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const TEST_TARGETS = join(ROOT, 'test/farm/helpers/test-targets.ts');

export interface Proc {
  child: ChildProcess;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const procs = new Set<Proc>();

export function blockfarm(args: string[], env: Record<string, string> = {}): Proc {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BLOCKFARM_')));
  const child = spawn(process.execPath, ['bin/blockfarm.js', ...args], {
    cwd: ROOT,
    env: { ...base, BLOCKFARM_LOG_FORMAT: 'json', BLOCKFARM_TARGET_PLUGINS: TEST_TARGETS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const p: Proc = {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  procs.add(p);
  void p.exited.then(() => procs.delete(p));
  return p;
}

/** Kill every process the tests started and that still runs (by PID). */
export async function killAll(): Promise<void> {
  for (const p of [...procs]) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
}

export function workerProc(url: string, ns: string, targets: string[], extra: string[] = [], env: Record<string, string> = {}): Proc {
  return blockfarm(['worker', '--redis', url, '--namespace', ns, '--target', targets.join(','), ...extra], env);
}

/**
 * One real Redis and a client for a test file: started before its tests; after them every process the
 * tests started is killed, the client and Redis stopped and `dirs` removed. `use` receives both.
 */
export function useFarmRedis(use: (redis: TestRedis, client: Redis) => void, dirs: string[] = []): void {
  let redis: TestRedis | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    redis = await startTestRedis();
    client = redisClient(redis.url);
    use(redis, client);
  });
  afterAll(async () => {
    await killAll();
    client?.disconnect();
    await redis?.stop();
    for (const d of dirs) removeDir(d);
  });
}

export function redisClient(url: string): Redis {
  const r = new Redis(redisOptions(parseRedisUrl(url)));
  r.on('error', () => {});
  return r;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Wait until the workers of these PIDs are registered; their infos. The wait
 * is generous: a worker process loads TypeScript through tsx, which takes
 * long on a busy machine.
 */
export async function waitForWorkers(redis: Redis, ns: string, pids: number[], timeoutMs = 120_000): Promise<WorkerInfo[]> {
  return waitFor(`workers ${pids.join(', ')} to register`, async () => {
    const live = (await liveWorkers(redis, ns)).filter((w) => pids.includes(w.pid));
    return live.length === pids.length ? live : undefined;
  }, timeoutMs);
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `blockfarm-${label}-`));
}

export function removeDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
}

export const quietLog = () => createLogger({ name: 'test', level: process.env.BLOCKFARM_TEST_LOG === '1' ? 'debug' : 'warn' });

/** Lines of stderr that are not JSON log lines (what people see as messages). */
export function messageLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() && !l.startsWith('{'));
}
