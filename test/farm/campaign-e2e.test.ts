/**
 * A campaign end to end on a real Redis with two worker processes: the model
 * target, and the TEST-ONLY wrapper testonly_corrupt:model that corrupts some
 * outcomes on purpose (helpers/test-targets.ts), so that divergences flow
 * through the whole farm: worker verdict -> coordinator -> data directory ->
 * triage queue -> one report per signature.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { CampaignState } from '../../coordinator/farm/campaign-state.ts';
import { type BatchEvent, Coordinator } from '../../coordinator/farm/coordinator.ts';
import { TRIAGE_QUEUE, encodeTargetName } from '../../worker/farm/protocol.ts';
import { type Proc, quietLog, redisClient, tempDir, useFarmRedis, waitForWorkers, workerProc } from './helpers/farm.ts';
import { type TestRedis, uniqueNamespace } from './helpers/redis.ts';
import { corrupts } from './helpers/test-targets.ts';

let redis: TestRedis;
let client: Redis;
const dirs: string[] = [];

useFarmRedis((r, c) => {
  redis = r;
  client = c;
}, dirs);

describe('a campaign on the model end to end, two worker processes', () => {
  it('runs every case exactly once and carries the corrupted outcomes to triage and the data directory', async () => {
    const ns = uniqueNamespace('e2e');
    const dataDir = tempDir('e2e');
    dirs.push(dataDir);
    const CORRUPT = 'testonly_corrupt:model';
    const targets = ['model', CORRUPT];
    const workers: Proc[] = [workerProc(redis.url, ns, targets, ['--concurrency', '1']), workerProc(redis.url, ns, targets, ['--concurrency', '1'])];
    const infos = await waitForWorkers(client, ns, workers.map((w) => w.pid));

    const CASES = 240;
    const coordinator = new Coordinator({
      redisUrl: redis.url,
      namespace: ns,
      dataDir,
      log: quietLog(),
      targets,
      budget: { cases: CASES },
      seed: 4242,
      generator: 'builtin',
      seeds: false,
      mutationRate: 0,
      batchSize: 12,
      maxInflightBatches: 4,
    });
    const enqueued = new Map<string, Map<number, string>>(targets.map((t) => [t, new Map()]));
    const results = new Map<string, Map<number, { id: string; kind: string; count: number }>>(targets.map((t) => [t, new Map()]));
    const batches: BatchEvent[] = [];
    coordinator.on('enqueued', (e) => {
      for (const c of e.cases) enqueued.get(e.target)!.set(c.index, c.id);
    });
    coordinator.on('batch', (b) => {
      batches.push(b);
      for (const r of b.results) {
        const m = results.get(b.target)!;
        const prev = m.get(r.index);
        m.set(r.index, { id: r.id, kind: r.kind, count: (prev?.count ?? 0) + 1 });
      }
    });
    const summary = await coordinator.run();

    expect(summary.finished).toBe(true);
    for (const t of targets) {
      // Every case in is a case out, once.
      const ins = enqueued.get(t)!;
      const outs = results.get(t)!;
      expect(ins.size).toBe(CASES);
      expect(outs.size).toBe(CASES);
      for (const [i, id] of ins) {
        expect(outs.get(i)?.id).toBe(id);
        expect(outs.get(i)?.count).toBe(1);
      }
      const counts = summary.targets.find((x) => x.target === t)!.counts;
      expect(counts.executed).toBe(CASES);
      expect(counts.queued).toBe(CASES);
      expect(counts.lost + counts.failed + counts.refused + counts.cancelled).toBe(0);
    }
    // The counts over time are in Redis for the dashboard: the last sample is the summary's counts.
    const history = await (await CampaignState.load(client, ns, summary.campaign))!.history();
    expect(history.length).toBeGreaterThanOrEqual(1);
    for (const t of targets) {
      const counts = summary.targets.find((x) => x.target === t)!.counts;
      expect(history[history.length - 1]!.targets[t]).toEqual({ executed: counts.executed, divergence: counts.divergence, crash: counts.crash, hang: counts.hang });
    }
    // The model agrees with itself.
    expect([...results.get('model')!.values()].every((r) => r.kind === 'pass')).toBe(true);
    // The wrapper's corruptions, and only they, are divergences.
    const corrupt = [...results.get(CORRUPT)!.values()];
    const expected = corrupt.filter((r) => corrupts(r.id)).map((r) => r.id).sort();
    const diverged = corrupt.filter((r) => r.kind === 'divergence').map((r) => r.id).sort();
    expect(expected.length).toBeGreaterThan(10);
    expect(diverged).toEqual(expected);
    expect(corrupt.filter((r) => r.kind !== 'divergence').every((r) => r.kind === 'pass')).toBe(true);
    // Both worker processes took batches.
    expect(new Set(batches.map((b) => b.worker))).toEqual(new Set(infos.map((i) => i.id)));

    // Every divergence is a file in the data directory, naming the coordinator and the campaign.
    const divDir = join(dataDir, 'divergences', summary.campaign, encodeTargetName(CORRUPT));
    expect(readdirSync(divDir).map((f) => f.replace(/\.json$/, '')).sort()).toEqual(expected);
    const rec = JSON.parse(readFileSync(join(divDir, `${expected[0]}.json`), 'utf8')) as Record<string, unknown>;
    expect(rec).toMatchObject({ campaign: summary.campaign, coordinator: coordinator.id, target: CORRUPT, caseId: expected[0] });
    expect((rec.outcome as { divergences: Array<{ class: string; dataClass?: string }> }).divergences[0]).toMatchObject({ class: 'wrong-data', dataClass: 'garbage' });

    // Triage: one job per divergence went through the triage queue, one report per signature.
    const triage = new Queue(TRIAGE_QUEUE, { connection: redisClient(redis.url), prefix: ns });
    const done = await triage.getJobs(['completed'], 0, -1);
    await triage.close();
    expect(done.map((j) => (j.data as { caseId: string }).caseId).sort()).toEqual(expected);
    for (const j of done) expect(j.data).toMatchObject({ coordinator: coordinator.id, campaign: summary.campaign, target: CORRUPT });
    const sigs = await client.hgetall(`${ns}:sigs`);
    expect(Object.values(sigs).reduce((n, v) => n + Number(v), 0)).toBe(expected.length);
    for (const sig of Object.keys(sigs)) {
      for (const f of ['report.json', 'report.md', 'case.json', 'signature.json']) expect(existsSync(join(dataDir, 'reports', sig, f))).toBe(true);
      const record = JSON.parse(readFileSync(join(dataDir, 'reports', sig, 'signature.json'), 'utf8')) as { count: number; targets: Record<string, unknown> };
      expect(record.count).toBe(Number(sigs[sig]));
      expect(Object.keys(record.targets)).toEqual([CORRUPT]);
    }
    expect(summary.signatures).toBe(Object.keys(sigs).length);
    // The corpus kept something, content-addressed.
    const corpus = await client.zrange(`${ns}:corpus`, '0', '-1');
    expect(corpus.length).toBeGreaterThan(0);
    for (const id of corpus) expect(existsSync(join(dataDir, 'corpus', 'cases', id.slice(0, 2), `${id}.json`))).toBe(true);

    // Graceful stop of the workers: SIGTERM, exit 0, deregistered.
    for (const w of workers) w.child.kill('SIGTERM');
    for (const w of workers) expect((await w.exited).code).toBe(0);
    expect(await client.zcard(`${ns}:workers`)).toBe(0);
  }, 180_000);
});
