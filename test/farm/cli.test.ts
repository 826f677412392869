/**
 * The farm's commands as users run them (real `node bin/blockfarm.js`
 * processes): the embedded campaign with its private redis-server, and the
 * one-line errors for bad options and an unreachable Redis, and the data
 * directory's retention caps as `blockfarm doctor` shows them.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/redis/server.ts';
import { blockfarm, killAll, messageLines, removeDir, tempDir } from './helpers/farm.ts';
import { startTestRedis, uniqueNamespace } from './helpers/redis.ts';

const dirs: string[] = [];
afterAll(async () => {
  await killAll();
  for (const d of dirs) removeDir(d);
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('blockfarm campaign (embedded)', () => {
  it('starts a private redis-server, runs the campaign, prints the summary and stops Redis', async () => {
    const dataDir = tempDir('cli-campaign');
    dirs.push(dataDir);
    const p = blockfarm(['campaign', '--cases', '40', '--targets', 'model', '--generator', 'builtin', '--data-dir', dataDir]);
    const { code } = await p.exited;
    expect(p.stderr()).not.toMatch(/^\s+at .+[(:]\d+/m);
    expect(code).toBe(0);
    const out = p.stdout();
    expect(out).toMatch(/^campaign seed-\d+ \(seed \d+\) finished after /m);
    expect(out).toMatch(/^target\s+cases\s+execs\/s\s+pass\s+divergences/m);
    expect(out).toMatch(/^model\s+40\s+[\d.,]+\s+40\s+0\s/m);
    expect(out).toMatch(/^no findings$/m);
    // Its Redis kept its data in the data directory and is gone (stopped by PID).
    const started = p.stderr().split('\n').filter((l) => l.includes('private redis-server started'));
    expect(started).toHaveLength(1);
    const redisPid = (JSON.parse(started[0]!) as { redisPid: number }).redisPid;
    expect(isAlive(redisPid)).toBe(false);
    expect(existsSync(join(dataDir, 'redis', 'redis.conf'))).toBe(true);
    expect(readdirSync(join(dataDir, 'campaigns'))).toHaveLength(1);
    expect(existsSync(join(dataDir, 'farm.lock'))).toBe(false);
  }, 120_000);

  it('--json prints one summary object', async () => {
    const dataDir = tempDir('cli-json');
    dirs.push(dataDir);
    const p = blockfarm(['campaign', '--cases', '10', '--targets', 'model', '--generator', 'builtin', '--no-seeds', '--data-dir', dataDir, '--json']);
    const { code } = await p.exited;
    expect(code).toBe(0);
    const s = JSON.parse(p.stdout()) as { finished: boolean; targets: Array<{ target: string; counts: { executed: number } }> };
    expect(s.finished).toBe(true);
    expect(s.targets[0]).toMatchObject({ target: 'model', counts: { executed: 10 } });
  }, 120_000);
});

describe('blockfarm campaign --redis URL (distributed)', () => {
  it('uses that Redis (no private one) and workers started elsewhere do the work', async () => {
    const redis = await startTestRedis();
    try {
      const ns = uniqueNamespace('dist');
      const dataDir = tempDir('cli-dist');
      dirs.push(dataDir);
      const w = blockfarm(['worker', '--redis', redis.url, '--namespace', ns, '--target', 'model']);
      const p = blockfarm(['campaign', '--redis', redis.url, '--namespace', ns, '--workers', '0', '--cases', '30', '--targets', 'model', '--generator', 'builtin', '--no-seeds', '--data-dir', dataDir, '--json']);
      const { code } = await p.exited;
      expect(code).toBe(0);
      expect(p.stderr()).not.toContain('private redis-server started');
      const s = JSON.parse(p.stdout()) as { finished: boolean; targets: Array<{ counts: { executed: number }; workers: number }> };
      expect(s.finished).toBe(true);
      expect(s.targets[0]!.counts.executed).toBe(30);
      expect(s.targets[0]!.workers).toBe(1);
      // The only worker was the one started apart: it ran the batches.
      expect(w.stderr()).toContain('"msg":"worker ready"');
      w.child.kill('SIGTERM');
      expect((await w.exited).code).toBe(0);
      expect(w.stderr()).toMatch(/"batches":[1-9]\d*,"msg":"worker stopped"/);
    } finally {
      await redis.stop();
    }
  }, 120_000);
});

describe('blockfarm doctor --data-dir', () => {
  it('shows the retention caps by size and age of corpus, reports and logs, and what each uses', async () => {
    const dataDir = tempDir('doctor');
    dirs.push(dataDir);
    writeFileSync(join(dataDir, 'retention.json'), JSON.stringify({ logs: { maxAgeDays: 7, maxBytes: 1048576 } }));
    const p = blockfarm(['doctor', '--data-dir', dataDir]);
    const { code } = await p.exited;
    expect(code).toBe(0);
    const out = p.stdout();
    expect(out).toContain(`data directory ${dataDir}: caps from ${join(dataDir, 'retention.json')}`);
    expect(out).toMatch(/^\s+category\s+directories\s+used\s+size cap\s+age cap\s+entries$/m);
    expect(out).toMatch(/^\s+corpus\s.*\s2(\.0)? GiB\s+365 days\s/m);
    expect(out).toMatch(/^\s+reports\s.*\s2(\.0)? GiB\s+180 days\s/m);
    expect(out).toMatch(/^\s+logs\s.*\s1(\.0)? MiB\s+7 days\s/m);
  }, 120_000);
});

describe('one-line errors', () => {
  const cases: Array<[string, string[], number, RegExp]> = [
    ['the host target without --allow-host', ['worker', '--redis', 'redis://127.0.0.1:1', '--target', 'host'], 2, /add --allow-host/],
    ['an unknown target', ['worker', '--redis', 'redis://127.0.0.1:1', '--target', 'frob'], 2, /unknown target 'frob'/],
    ['a bad Redis URL', ['worker', '--redis', 'http://x', '--target', 'model'], 2, /scheme must be redis:\/\/ or rediss:\/\//],
    ['no --redis for the coordinator', ['coordinator', '--cases', '5'], 2, /--redis URL .* is required/],
    ['both budgets', ['coordinator', '--redis', 'redis://127.0.0.1:1', '--cases', '5', '--duration', '5'], 2, /--duration or --cases, not both/],
    ['a bad duration', ['campaign', '--duration', 'soon'], 2, /'soon' is not a duration/],
  ];
  it.each(cases)('%s', async (_label, args, exit, message) => {
    const p = blockfarm(args);
    const { code } = await p.exited;
    expect(code).toBe(exit);
    const lines = messageLines(p.stderr());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  }, 60_000);

  it.each([['worker', '--target', 'model'], ['coordinator', '--cases', '5']])('a dead Redis: blockfarm %s exits 4 with one line', async (cmd, ...rest) => {
    const port = await freePort();
    const p = blockfarm([cmd, '--redis', `redis://:secret@127.0.0.1:${port}`, ...rest, '--data-dir', tempDir('deadredis')]);
    const { code } = await p.exited;
    expect(code).toBe(4);
    const lines = messageLines(p.stderr());
    expect(lines).toEqual([`blockfarm ${cmd}: cannot reach Redis at redis://:***@127.0.0.1:${port}: connection refused (is redis-server running there?)`]);
    expect(p.stderr()).not.toContain('secret');
  }, 60_000);
});
