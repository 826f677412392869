/**
 * The farm under failure, on a real Redis: a worker SIGKILLed in the middle
 * of a batch, a coordinator SIGKILLed and restarted, a queue nobody drains
 * (back-pressure), a bad case put on a queue, a target that kills its own
 * process, a worker stopped with SIGTERM mid-batch, and Redis dying.
 *
 * Case accounting is exact everywhere: every case id that went in comes out
 * exactly once (or is counted as refused/failed with a reason).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { type CampaignSummary, Coordinator, type CoordinatorOptions } from '../../coordinator/farm/coordinator.ts';
import { builtinCase, indexSeed } from '../../coordinator/farm/case-source.ts';
import { summaryLines } from '../../coordinator/farm/progress.ts';
import { EXEC_JOB_NAME, HEARTBEAT_MS, PROTOCOL_VERSION, WORKER_TTL_MS, caseId, execQueueName } from '../../worker/farm/protocol.ts';
import { liveWorkers } from '../../worker/farm/registry.ts';
import { type Proc, blockfarm, messageLines, quietLog, redisClient, tempDir, useFarmRedis, waitFor, waitForWorkers, workerProc } from './helpers/farm.ts';
import { type TestRedis, startTestRedis, uniqueNamespace } from './helpers/redis.ts';
import { breaks, crashes } from './helpers/test-targets.ts';

let redis: TestRedis;
let client: Redis;
const dirs: string[] = [];

useFarmRedis((r, c) => {
  redis = r;
  client = c;
}, dirs);

function dataDir(label: string): string {
  const d = tempDir(label);
  dirs.push(d);
  return d;
}

/** An in-process coordinator that records every case id in and out. */
function ledgerCoordinator(opts: Omit<CoordinatorOptions, 'redisUrl' | 'log'>) {
  const c = new Coordinator({ redisUrl: redis.url, log: quietLog(), generator: 'builtin', seeds: false, mutationRate: 0, ...opts });
  const ins = new Map<number, string>();
  const outs = new Map<number, Array<{ id: string; kind: string; worker: string }>>();
  c.on('enqueued', (e) => {
    for (const x of e.cases) ins.set(x.index, x.id);
  });
  c.on('batch', (b) => {
    for (const r of b.results) outs.set(r.index, [...(outs.get(r.index) ?? []), { id: r.id, kind: r.kind, worker: b.worker }]);
  });
  return { c, ins, outs };
}

function expectEveryCaseOnce(ins: Map<number, string>, outs: Map<number, Array<{ id: string }>>, n: number): void {
  expect(ins.size).toBe(n);
  expect(outs.size).toBe(n);
  for (const [i, id] of ins) expect(outs.get(i)?.map((o) => o.id)).toEqual([id]);
}

describe('a worker killed mid-batch', () => {
  it('loses no case: its batch returns to the queue and another worker runs it', async () => {
    const ns = uniqueNamespace('kill');
    const T = 'testonly_slow:model';
    const env = { BLOCKFARM_TEST_SLOW_MS: '40' };
    const fast = ['--lock-duration', '2s', '--stalled-interval', '1s'];
    const a = workerProc(redis.url, ns, [T], fast, env);
    const b = workerProc(redis.url, ns, [T], fast, env);
    const [wa] = (await waitForWorkers(client, ns, [a.pid, b.pid])).filter((w) => w.pid === a.pid);
    const { c, ins, outs } = ledgerCoordinator({ namespace: ns, dataDir: dataDir('kill'), targets: [T], budget: { cases: 160 }, batchSize: 10, seed: 11 });
    const run = c.run();
    const queue = new Queue(execQueueName(T), { connection: redisClient(redis.url), prefix: ns });
    // Wait until A is in the middle of a batch (some batch already done, so it is well under way), then SIGKILL it.
    const victim = await waitFor('worker A to be running a batch', async () => {
      if (outs.size < 20) return undefined;
      const active = await queue.getActive();
      return active.find((j) => j.processedBy === wa!.id);
    });
    a.child.kill('SIGKILL');
    await a.exited;
    const killedAt = Date.now();
    // Its registration lapses on its own (no beats), while B keeps beating.
    await waitFor('the killed worker to drop out of the registry', async () => !(await liveWorkers(client, ns)).some((w) => w.pid === a.pid), WORKER_TTL_MS + 15_000);
    expect(Date.now() - killedAt).toBeLessThan(WORKER_TTL_MS + 15_000);
    const summary = await run;
    await queue.close();
    expect(summary.finished).toBe(true);
    expectEveryCaseOnce(ins, outs, 160);
    // The killed batch was finished by the other worker.
    const victimData = victim.data as { from: number; to: number };
    for (let i = victimData.from; i < victimData.to; i++) expect(outs.get(i)?.[0]?.worker).not.toBe(wa!.id);
    const counts = summary.targets[0]!.counts;
    expect(counts).toMatchObject({ executed: 160, pass: 160, lost: 0, failed: 0 });
    b.child.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
  }, 180_000);
});

describe('a batch that runs longer than the lock duration', () => {
  it('stays with its worker (the lock is renewed while it runs, the worker heartbeats): every case runs once', async () => {
    const ns = uniqueNamespace('lock');
    const T = 'testonly_slow:model';
    const runLog = join(dataDir('lock-log'), 'runs.txt');
    // Batches of 4 cases x 1.2 s: about 5 s each, over twice the 2 s lock; both workers look for stalled batches every second.
    const env = { BLOCKFARM_TEST_SLOW_MS: '1200', BLOCKFARM_TEST_RUN_LOG: runLog };
    const fast = ['--lock-duration', '2s', '--stalled-interval', '1s'];
    const a = workerProc(redis.url, ns, [T], fast, env);
    const b = workerProc(redis.url, ns, [T], fast, env);
    const before = await waitForWorkers(client, ns, [a.pid, b.pid]);
    const { c, ins, outs } = ledgerCoordinator({ namespace: ns, dataDir: dataDir('lock'), targets: [T], budget: { cases: 16 }, batchSize: 4, seed: 16 });
    const summary = await c.run();
    expectEveryCaseOnce(ins, outs, 16);
    expect(summary.targets[0]!.counts).toMatchObject({ executed: 16, lost: 0, failed: 0 });
    // No batch was taken from a live worker and run again elsewhere: each case ran exactly once.
    const runs = readFileSync(runLog, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]!);
    expect(runs.sort()).toEqual([...ins.values()].sort());
    // Both heartbeat all along: their last beat is newer than at registration.
    const after = await liveWorkers(client, ns);
    for (const w of before) expect(after.find((x) => x.id === w.id)?.beatAt).toBeGreaterThan(w.beatAt);
    expect(summary.elapsedMs).toBeGreaterThan(HEARTBEAT_MS);
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
  }, 240_000);
});

describe('a worker stopped with SIGTERM mid-batch', () => {
  it('returns its batch to the queue after the grace period and exits 0; nothing is lost', async () => {
    const ns = uniqueNamespace('term');
    const T = 'testonly_slow:model';
    const env = { BLOCKFARM_TEST_SLOW_MS: '300' };
    const a = workerProc(redis.url, ns, [T], ['--shutdown-grace', '1s'], env);
    await waitForWorkers(client, ns, [a.pid]);
    const { c, ins, outs } = ledgerCoordinator({ namespace: ns, dataDir: dataDir('term'), targets: [T], budget: { cases: 40 }, batchSize: 20, seed: 12 });
    const run = c.run();
    const queue = new Queue(execQueueName(T), { connection: redisClient(redis.url), prefix: ns });
    await waitFor('a batch to be running', async () => (await queue.getActive()).length > 0);
    await new Promise((r) => setTimeout(r, 500));
    a.child.kill('SIGTERM');
    expect((await a.exited).code).toBe(0);
    expect(a.stderr()).toContain('batch returned to the queue');
    // Logs come from child loggers: every line of a batch names the worker, the job, its campaign and coordinator.
    const returned = a.stderr().split('\n').filter((l) => l.includes('batch returned to the queue')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(returned.length).toBeGreaterThan(0);
    for (const l of returned) expect(l).toMatchObject({ worker: expect.any(String), job: expect.stringMatching(/^seed-12-/), campaign: 'seed-12', coordinator: c.id, target: T });
    // Nothing was counted from the returned batch, and it waits for the next worker, not counted as a failed attempt.
    const waiting = await queue.getWaiting();
    expect(waiting.length).toBeGreaterThan(0);
    expect(waiting.every((j) => j.attemptsMade === 0)).toBe(true);
    const b = workerProc(redis.url, ns, [T], [], { BLOCKFARM_TEST_SLOW_MS: '5' });
    const summary = await run;
    await queue.close();
    expectEveryCaseOnce(ins, outs, 40);
    expect(summary.targets[0]!.counts).toMatchObject({ executed: 40, lost: 0, failed: 0 });
    b.child.kill('SIGTERM');
    await b.exited;
  }, 180_000);
});

describe('a coordinator killed and restarted', () => {
  it('resumes the campaign from Redis and the data directory: every case counted once', async () => {
    const ns = uniqueNamespace('resume');
    const T = 'testonly_slow:model';
    const w = workerProc(redis.url, ns, [T], ['--concurrency', '2'], { BLOCKFARM_TEST_SLOW_MS: '15' });
    await waitForWorkers(client, ns, [w.pid]);
    const dir = dataDir('resume');
    const args = ['coordinator', '--redis', redis.url, '--namespace', ns, '--targets', T, '--cases', '300', '--campaign-seed', '99', '--batch-size', '10', '--generator', 'builtin', '--no-seeds', '--data-dir', dir, '--json'];
    const first = blockfarm(args);
    await waitFor('some results counted', async () => Number(await client.hget(`${ns}:campaign:seed-99:counts:testonly_slow-model`, 'executed')) >= 60, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}; the coordinator said: ${first.stderr().slice(-2000)}`);
    });
    first.child.kill('SIGKILL');
    await first.exited;
    const before = await client.hgetall(`${ns}:campaign:seed-99:counts:testonly_slow-model`);
    expect(Number(before.executed)).toBeLessThan(300);
    const second = blockfarm(args);
    const { code } = await second.exited;
    expect(messageLines(second.stderr())).toEqual([]);
    expect(code).toBe(0);
    expect(second.stderr()).toContain('resuming campaign');
    const summary = JSON.parse(second.stdout()) as CampaignSummary;
    expect(summary).toMatchObject({ campaign: 'seed-99', resumed: true, finished: true });
    expect(summary.targets[0]!.counts).toMatchObject({ queued: 300, executed: 300, pass: 300, lost: 0, failed: 0, cancelled: 0 });
    // Nothing left behind: no batch in flight, no job in the queue.
    expect(await client.hlen(`${ns}:campaign:seed-99:inflight`)).toBe(0);
    const queue = new Queue(execQueueName(T), { connection: redisClient(redis.url), prefix: ns });
    expect(await queue.getJobCounts('waiting', 'active', 'completed', 'delayed')).toEqual({ waiting: 0, active: 0, completed: 0, delayed: 0 });
    await queue.close();
    // Starting it again: the campaign is finished, bad input.
    const third = blockfarm(args);
    expect((await third.exited).code).toBe(2);
    expect(messageLines(third.stderr())).toEqual([expect.stringMatching(/campaign seed-99 finished on .*; pick another --campaign-seed/)]);
    w.child.kill('SIGTERM');
    await w.exited;
  }, 240_000);
});

describe('back-pressure', () => {
  it('keeps the queue depth bounded whatever the generator could produce', async () => {
    const ns = uniqueNamespace('bp');
    const T = 'model';
    const MAX = 3;
    const BATCH = 8;
    const { c, ins, outs } = ledgerCoordinator({ namespace: ns, dataDir: dataDir('bp'), targets: [T], budget: { cases: 400 }, batchSize: BATCH, maxInflightBatches: MAX, seed: 13 });
    const run = c.run();
    const queue = new Queue(execQueueName(T), { connection: redisClient(redis.url), prefix: ns });
    const depth = async () => {
      const n = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed');
      return Object.values(n).reduce((s, x) => s + x, 0);
    };
    // No worker: the coordinator queues a few batches and then waits (2 while no worker is live).
    await waitFor('the first batches', async () => (await depth()) > 0);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await depth()).toBeLessThanOrEqual(MAX);
    expect(ins.size).toBeLessThanOrEqual(MAX * BATCH);
    // With a worker it runs at full speed, and the depth stays bounded all along.
    const w = workerProc(redis.url, ns, [T], ['--concurrency', '2']);
    let max = 0;
    let samples = 0;
    const sampler = (async () => {
      while (outs.size < 400) {
        max = Math.max(max, await depth());
        samples++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const summary = await run;
    await sampler;
    await queue.close();
    expect(samples).toBeGreaterThan(10);
    expect(max).toBeLessThanOrEqual(MAX);
    expect(summary.targets[0]!.counts.executed).toBe(400);
    expectEveryCaseOnce(ins, outs, 400);
    w.child.kill('SIGTERM');
    await w.exited;
  }, 180_000);
});

describe('bad jobs on a queue', () => {
  it('fail with a clear reason and the campaign goes on', async () => {
    const ns = uniqueNamespace('bad');
    const T = 'model';
    const w = workerProc(redis.url, ns, [T]);
    await waitForWorkers(client, ns, [w.pid]);
    const queue = new Queue(execQueueName(T), { connection: redisClient(redis.url), prefix: ns });
    const good = builtinCase(indexSeed(1, 1));
    const invalid = { ...good, stack: { layers: [{ id: 'd0', kind: 'disk', size: 1000 }] } };
    const base = { v: PROTOCOL_VERSION, coordinator: 'someone-1-abcdef', campaign: 'seed-1', target: T, from: 0, caseTimeoutMs: 10_000 };
    const bad = [
      { name: 'invalid-case', data: { ...base, to: 2, cases: [{ id: caseId(good), index: 0, origin: 'generated', case: good }, { id: 'aaaaaaaaaaaaaaaa', index: 1, origin: 'generated', case: invalid }] } },
      { name: 'no-campaign', data: { ...base, campaign: undefined, to: 1, cases: [{ id: caseId(good), index: 0, origin: 'generated', case: good }] } },
      { name: 'altered', data: { ...base, to: 1, cases: [{ id: 'bbbbbbbbbbbbbbbb', index: 0, origin: 'generated', case: good }] } },
      { name: 'other-target', data: { ...base, target: 'host', to: 1, cases: [{ id: caseId(good), index: 0, origin: 'generated', case: good }] } },
    ];
    for (const b of bad) await queue.add(EXEC_JOB_NAME, b.data, { jobId: `bad-${b.name}`, attempts: 3 });
    const { c, ins, outs } = ledgerCoordinator({ namespace: ns, dataDir: dataDir('bad'), targets: [T], budget: { cases: 200 }, batchSize: 16, seed: 14 });
    const summary = await c.run();
    const reasons = new Map<string, { reason: string; attempts: number }>();
    for (const b of bad) {
      const job = await queue.getJob(`bad-${b.name}`);
      expect(await job!.getState()).toBe('failed');
      reasons.set(b.name, { reason: job!.failedReason, attempts: job!.attemptsMade });
    }
    await queue.close();
    // Refused at once (no retries), one clear line each.
    for (const r of reasons.values()) {
      expect(r.attempts).toBe(1);
      expect(r.reason).toMatch(/^refused: /);
      expect(r.reason).not.toContain('\n');
    }
    expect(reasons.get('invalid-case')!.reason).toMatch(/1 of 2 cases are not valid cases: case #1 \(aaaaaaaaaaaaaaaa\): stack\.layers\[0\]\.size: /);
    expect(reasons.get('no-campaign')!.reason).toMatch(/malformed exec job .*campaign/);
    expect(reasons.get('altered')!.reason).toMatch(/hashes to [0-9a-f]{16}, not to its id bbbbbbbbbbbbbbbb/);
    expect(reasons.get('other-target')!.reason).toMatch(/job for target 'host' on the queue of 'model'/);
    // The campaign went on and the worker too.
    expect(summary.targets[0]!.counts).toMatchObject({ executed: 200, refused: 0 });
    expectEveryCaseOnce(ins, outs, 200);
    expect((await liveWorkers(client, ns)).map((x) => x.pid)).toEqual([w.pid]);
    w.child.kill('SIGTERM');
    await w.exited;
  }, 240_000);
});

describe('a target that kills its own process', () => {
  it('fails its batch, not the worker; the farm splits the batch until the crashing case is alone', async () => {
    const ns = uniqueNamespace('crash');
    const T = 'testonly_crash:model';
    const w = workerProc(redis.url, ns, [T], ['--concurrency', '2']);
    await waitForWorkers(client, ns, [w.pid]);
    const dir = dataDir('crash');
    const N = 120;
    const { c, ins, outs } = ledgerCoordinator({ namespace: ns, dataDir: dir, targets: [T], budget: { cases: N }, batchSize: 16, seed: 15, attempts: 1 });
    const summary = await c.run();
    const crashing = [...ins.values()].filter((id) => crashes(id));
    expect(crashing.length).toBeGreaterThan(0);
    const counts = summary.targets[0]!.counts;
    expect(counts.failed).toBe(crashing.length);
    expect(counts.executed).toBe(N - crashing.length);
    for (const [i, id] of ins) expect(outs.has(i)).toBe(!crashes(id));
    // The worker lived through it all.
    expect(w.child.exitCode).toBe(null);
    expect((await liveWorkers(client, ns)).length).toBe(1);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 180_000);
});

describe('a target that fails as infrastructure', () => {
  it('counts infrastructure errors apart from findings and keeps each reason in the campaign record', async () => {
    const ns = uniqueNamespace('infra');
    const T = 'testonly_broken:model';
    const w = workerProc(redis.url, ns, [T]);
    await waitForWorkers(client, ns, [w.pid]);
    const dir = dataDir('infra');
    const N = 96;
    const { c, ins, outs } = ledgerCoordinator({ namespace: ns, dataDir: dir, targets: [T], budget: { cases: N }, batchSize: 16, seed: 17 });
    const summary = await c.run();
    expectEveryCaseOnce(ins, outs, N);
    const broken = [...ins.values()].filter((id) => breaks(id));
    expect(broken.length).toBeGreaterThan(0);
    expect(summary.targets[0]!.counts).toMatchObject({ executed: N, infraError: broken.length, pass: N - broken.length, divergence: 0 });
    const lines = readFileSync(join(dir, 'campaigns', summary.campaign, 'infra-errors.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { caseId: string; message: string; campaign: string });
    expect(lines.map((l) => l.caseId).sort()).toEqual([...broken].sort());
    for (const l of lines) expect(l).toMatchObject({ campaign: summary.campaign, message: `TEST ONLY: the broken target failed case ${l.caseId}` });
    expect(summaryLines(summary).join('\n')).toContain(`infrastructure errors (not findings), with their reasons: ${join(dir, 'campaigns', summary.campaign, 'infra-errors.jsonl')}`);
    w.child.kill('SIGTERM');
    await w.exited;
  }, 240_000);
});

describe('Redis dying under a running farm', () => {
  it('the worker exits 4 with one line once Redis has been gone for its grace period', async () => {
    const own = await startTestRedis();
    try {
      const ns = uniqueNamespace('dead');
      const w = workerProc(own.url, ns, ['model'], ['--redis-grace', '2s']);
      const probe = redisClient(own.url);
      await waitForWorkers(probe, ns, [w.pid]);
      probe.disconnect();
      await own.kill();
      const { code } = await w.exited;
      expect(code).toBe(4);
      expect(messageLines(w.stderr())).toEqual([expect.stringMatching(/^blockfarm worker: lost Redis at redis:\/\/.*127\.0\.0\.1:\d+ for 2 s: /)]);
    } finally {
      await own.stop();
    }
  }, 60_000);

  it('the coordinator stops with a one-line error and non-zero exit', async () => {
    const own = await startTestRedis();
    try {
      const ns = uniqueNamespace('dead2');
      const p = blockfarm(['coordinator', '--redis', own.url, '--namespace', ns, '--targets', 'model', '--generator', 'builtin', '--redis-grace', '2s', '--data-dir', dataDir('dead2')]);
      const probe = redisClient(own.url);
      await waitFor('the campaign to start', async () => (await probe.zcard(`${ns}:campaigns`)) > 0);
      probe.disconnect();
      await own.kill();
      const { code } = await p.exited;
      expect(code).toBe(4);
      expect(messageLines(p.stderr())).toEqual([expect.stringMatching(/^blockfarm coordinator: lost Redis at .* for 2 s: /)]);
    } finally {
      await own.stop();
    }
  }, 90_000);
});

export type { Proc };
