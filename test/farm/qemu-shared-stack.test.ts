/**
 * A stack reused across programs through the whole farm: a campaign on the
 * QEMU target whose first group of four is a shared-stack group
 * (coordinator/farm/case-source.ts) runs as one batch on a worker process;
 * the QEMU target keeps the stack for the followers (model/stack-reuse.ts,
 * worker/targets/qemu), the worker reports which programs ran on a kept
 * stack, and the coordinator counts them beside every outcome.
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { isSharedStackGroup } from '../../coordinator/farm/case-source.ts';
import { Coordinator } from '../../coordinator/farm/coordinator.ts';
import { summaryLines } from '../../coordinator/farm/progress.ts';
import { testKernel } from '../qemu/helpers.ts';
import { quietLog, tempDir, useFarmRedis, waitForWorkers, workerProc } from './helpers/farm.ts';
import { type TestRedis, uniqueNamespace } from './helpers/redis.ts';

let redis: TestRedis;
let client: Redis;
const dirs: string[] = [];

useFarmRedis((r, c) => {
  redis = r;
  client = c;
}, dirs);

describe('a stack reused across programs, through the farm', () => {
  it('runs the followers of a shared-stack group on the stack the first of them built, and counts them', async () => {
    await testKernel();
    // The first campaign seed from 1 whose group 0 shares a stack (the default share is 0.3 of the groups).
    let seed = 1;
    while (!isSharedStackGroup(seed, 0, 0.3)) seed++;
    const ns = uniqueNamespace('qshared');
    const dataDir = tempDir('qshared');
    dirs.push(dataDir);
    const w = workerProc(redis.url, ns, ['qemu']);
    await waitForWorkers(client, ns, [w.pid]);
    const c = new Coordinator({ redisUrl: redis.url, namespace: ns, dataDir, log: quietLog(), targets: ['qemu'], budget: { cases: 4 }, seed, seeds: false, mutationRate: 0, batchSize: 4 });
    const origins: string[] = [];
    c.on('enqueued', (e) => origins.push(...e.cases.map((x) => x.origin)));
    const s = await c.run();
    const counts = s.targets[0]!.counts;
    expect(counts.executed).toBe(4);
    expect(origins).toEqual(['generated', 'generated', 'generated', 'generated']);
    // Every case judged, none an infrastructure error (a divergence here would be a finding to look at).
    expect(counts.pass + counts.unsupported, JSON.stringify(counts)).toBe(4);
    // Three followers share one stack: the first to run builds it (or the group's first case, when it is the same stack), the others run on it.
    expect(counts.stackReused, JSON.stringify(counts)).toBeGreaterThanOrEqual(2);
    expect(counts.stackReused).toBeLessThanOrEqual(3);
    expect(summaryLines(s).join('\n')).toMatch(/on a kept stack/);
    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 600_000);
});
