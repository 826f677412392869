/**
 * The farm's one triage path, on a real Redis with real worker processes:
 * findings filed through the `triage` queue land in the signature store
 * (Redis and <data>/reports/<id>/), a new signature is minimized with every
 * candidate run by the workers through the exec queue (many at once, within
 * a budget) down to the known minimal case of the TEST-ONLY planted bug
 * (helpers/planted-target.ts), its report folder gets the reproducers, a
 * retried job is counted once, a second case of the same bug only moves the
 * counts, and a kernel new to the farm (a worker serving a target not seen
 * before) gets the open signatures re-tested on it.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataDir } from '../../coordinator/farm/data-dir.ts';
import { TriageConsumer } from '../../coordinator/farm/triage.ts';
import { DirSignatureStore, type MinimizeResult, type SignatureRecord, signatureOf, signaturesRoot } from '../../coordinator/triage/index.ts';
import { type TriageJobData, PROTOCOL_VERSION, TRIAGE_QUEUE, caseId, execQueueName } from '../../worker/farm/protocol.ts';
import { type Proc, ROOT, TEST_TARGETS, killAll, quietLog, redisClient, removeDir, tempDir, waitFor, waitForWorkers, workerProc } from '../farm/helpers/farm.ts';
import { type TestRedis, startTestRedis, uniqueNamespace } from '../farm/helpers/redis.ts';
import { PlantedBugExecutor, plantedCase } from './helpers/planted-bug.ts';

const PLANTED = 'testonly_planted:model';
const CLEAN = 'testonly_clean:model';
const PLUGINS = `${TEST_TARGETS},${join(ROOT, 'test/triage/helpers/planted-target.ts')}`;

let redis: TestRedis;
let client: Redis;
const dirs: string[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  client = redisClient(redis.url);
});

afterAll(async () => {
  await killAll();
  client?.disconnect();
  await redis?.stop();
  for (const d of dirs) removeDir(d);
});

function finding(theCase: ReturnType<typeof plantedCase>['theCase'], outcome: TriageJobData['outcome'], campaign: string): TriageJobData {
  return {
    v: PROTOCOL_VERSION,
    coordinator: 'test-1-abcdef',
    campaign,
    target: PLANTED,
    worker: 'w',
    execJob: `${campaign}-x-0-1`,
    caseId: caseId(theCase),
    signature: signatureOf(outcome, theCase).id,
    scenarios: [],
    outcome,
    case: theCase,
  };
}

describe('triage on the farm', () => {
  it('files, minimizes on the workers through the exec queue, reports, counts repeats once, re-tests on a new kernel', async () => {
    const ns = uniqueNamespace('triage');
    const data = tempDir('triage-farm');
    dirs.push(data);
    const workers: Proc[] = [workerProc(redis.url, ns, [PLANTED], ['--concurrency', '2'], { BLOCKFARM_TARGET_PLUGINS: PLUGINS })];
    await waitForWorkers(client, ns, workers.map((w) => w.pid));

    const minimized: Array<{ sig: string; m: MinimizeResult | undefined }> = [];
    const retested: Array<{ sig: string; kernel: string; shown: number; runs: number }> = [];
    const filed: boolean[] = [];
    const consumer = new TriageConsumer({
      connection: redisClient(redis.url).duplicate({ maxRetriesPerRequest: null }),
      redis: client,
      namespace: ns,
      dataDir: new DataDir(data),
      log: quietLog(),
      minimizeBudget: { maxExecutions: 200, concurrency: 6, confirmRuns: 2 },
      retestEveryMs: 500,
      onFiled: (_d, isNew) => filed.push(isNew),
      onMinimized: (sig, m) => minimized.push({ sig, m }),
      onRetested: (sig, kernel, shown, runs) => retested.push({ sig, kernel, shown, runs }),
    });
    await consumer.start();
    const triage = new Queue(TRIAGE_QUEUE, { connection: redisClient(redis.url), prefix: ns });
    // What the workers answered on the exec queue for triage (job ids triage-...).
    const execEvents = new QueueEvents(execQueueName(PLANTED), { connection: redisClient(redis.url).duplicate({ maxRetriesPerRequest: null }), prefix: ns });
    const answered: string[] = [];
    execEvents.on('completed', ({ jobId }) => void (jobId.startsWith('triage-') && answered.push(jobId)));
    await execEvents.waitUntilReady();
    try {
      // A finding as the coordinator queues it: a 60-op case, three threads, six layers.
      const { theCase, planted } = plantedCase(60, 11);
      const outcome = await new PlantedBugExecutor().run(theCase);
      expect(outcome.kind).toBe('divergence');
      if (outcome.kind !== 'divergence') return;
      const job = finding(theCase, outcome, 'seed-1');
      await triage.add('divergence', job, { jobId: 'seed-1-a' });
      // The same finding queued again (a retried job of another coordinator) is not counted twice.
      await triage.add('divergence', job, { jobId: 'seed-1-a-again' });
      await waitFor('minimization', async () => minimized.length > 0, 120_000, 200);
      const { sig, m } = minimized[0]!;
      expect(m?.reproduced).toBe(true);
      const ops = m!.minimized.program.threads.flatMap((t) => t.ops);
      expect(ops.map((o) => o.id).sort((a, b) => a - b)).toEqual([planted.write, planted.fsync, planted.read]);
      expect(m!.minimized.stack.layers.map((l) => l.kind)).toEqual(['disk']);
      expect(m!.executions).toBeLessThanOrEqual(200);
      expect(m!.finalRate.reproduced).toBe(m!.finalRate.runs);

      // Every candidate ran on the worker process (only it has the planted bug), as a job of its exec queue.
      expect(answered.length).toBe(m!.executions);
      expect(new Set(answered).size).toBe(answered.length);

      // The store: Redis and the files agree; one occurrence; the reproduction rate of the minimized case.
      const fromRedis = JSON.parse((await client.hget(`${ns}:signatures`, sig))!) as SignatureRecord;
      const fromFiles = await new DirSignatureStore(signaturesRoot(data)).get(sig);
      expect(fromRedis.count).toBe(1);
      expect(fromFiles?.count).toBe(1);
      expect(fromRedis).toMatchObject({ status: 'new', first: { target: PLANTED, campaign: 'seed-1' } });
      expect(Object.keys(fromRedis.targets)).toEqual([PLANTED]);
      expect(fromRedis.reproduction).toMatchObject({ case: 'minimized', target: PLANTED });
      expect(filed).toEqual([true]);

      // The report folder.
      const dir = join(data, 'reports', sig);
      expect(readdirSync(dir)).toEqual(expect.arrayContaining(['report.md', 'report.json', 'case.json', 'minimized.json', 'repro.c', 'repro.sh', 'signature.json']));
      const md = readFileSync(join(dir, 'report.md'), 'utf8');
      expect(md).toMatch(/\*\*Minimized:\*\* 60 ops, 3 threads, 6 layers → 3 ops, 1 thread, 1 layer/);
      expect(md).toMatch(/Warning/);

      // Another case showing the same bug: counted, no second minimization.
      const other = plantedCase(40, 12);
      const o2 = await new PlantedBugExecutor().run(other.theCase);
      if (o2.kind !== 'divergence') throw new Error('the second planted case shows no divergence');
      await triage.add('divergence', finding(other.theCase, o2, 'seed-2'), { jobId: 'seed-2-b' });
      await waitFor('the second occurrence', async () => filed.length === 2, 30_000);
      expect(filed).toEqual([true, false]);
      const again = JSON.parse((await client.hget(`${ns}:signatures`, sig))!) as SignatureRecord;
      expect(again.count).toBe(2);
      expect(JSON.parse(readFileSync(join(dir, 'signature.json'), 'utf8')).count).toBe(2);
      expect(readFileSync(join(dir, 'occurrences.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);

      // A kernel new to the farm: a worker starts serving it; the open signature is re-tested there.
      const w2 = workerProc(redis.url, ns, [CLEAN], [], { BLOCKFARM_TARGET_PLUGINS: PLUGINS });
      workers.push(w2);
      await waitFor('the re-test', async () => retested.length > 0, 60_000, 200);
      expect(retested[0]).toMatchObject({ sig, kernel: CLEAN, shown: 0, runs: 3 });
      const after = await new DirSignatureStore(signaturesRoot(data)).get(sig);
      expect(after?.retests[CLEAN]).toMatchObject({ runs: 3, reproduced: 0 });
      expect(existsSync(join(dir, 'report.json'))).toBe(true);
    } finally {
      await execEvents.close();
      await triage.close();
      await consumer.close();
      for (const w of workers) w.child.kill('SIGTERM');
      for (const w of workers) await w.exited;
    }
  }, 240_000);

  it('a coordinator that stops mid-minimization hands it to the next one', async () => {
    const ns = uniqueNamespace('triage-resume');
    const data = tempDir('triage-resume');
    dirs.push(data);
    const consumer = (onMinimized?: (sig: string, m: MinimizeResult | undefined) => void) =>
      new TriageConsumer({
        connection: redisClient(redis.url).duplicate({ maxRetriesPerRequest: null }),
        redis: client,
        namespace: ns,
        dataDir: new DataDir(data),
        log: quietLog(),
        minimizeBudget: { maxExecutions: 200, concurrency: 6, confirmRuns: 2 },
        retest: false,
        ...(onMinimized ? { onMinimized } : {}),
      });
    const triage = new Queue(TRIAGE_QUEUE, { connection: redisClient(redis.url), prefix: ns });
    const work = new Queue('triage-work', { connection: redisClient(redis.url), prefix: ns });
    try {
      // No worker serves the target yet: the minimization waits on the exec queue.
      const first = consumer();
      await first.start();
      const { theCase } = plantedCase(30, 13);
      const outcome = await new PlantedBugExecutor().run(theCase);
      if (outcome.kind !== 'divergence') throw new Error('no divergence');
      await triage.add('divergence', finding(theCase, outcome, 'seed-3'), { jobId: 'seed-3-a' });
      await waitFor('the minimization to start', async () => (await work.getJobCounts('active')).active === 1, 30_000);
      await first.close();
      const counts = await work.getJobCounts('waiting', 'active', 'failed', 'completed');
      expect(counts).toMatchObject({ waiting: 1, active: 0, failed: 0, completed: 0 });
      const sig = signatureOf(outcome, theCase).id;
      expect(JSON.parse((await client.hget(`${ns}:signatures`, sig))!).reproduction).toBeUndefined();

      // The next coordinator, with a worker this time, takes it up and finishes it.
      const w = workerProc(redis.url, ns, [PLANTED], ['--concurrency', '2'], { BLOCKFARM_TARGET_PLUGINS: PLUGINS });
      await waitForWorkers(client, ns, [w.pid]);
      const done: Array<MinimizeResult | undefined> = [];
      const second = consumer((_s, m) => done.push(m));
      await second.start();
      await waitFor('the minimization on the next coordinator', async () => done.length > 0, 120_000, 200);
      expect(done[0]?.reproduced).toBe(true);
      expect(done[0]!.minimized.program.threads.flatMap((t) => t.ops)).toHaveLength(3);
      await second.close();
      w.child.kill('SIGTERM');
      await w.exited;
    } finally {
      await work.close();
      await triage.close();
    }
  }, 240_000);
});
