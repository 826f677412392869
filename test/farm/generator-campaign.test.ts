/**
 * A campaign with the real case generator (not the stand-in the other farm
 * tests use), on the model target through a real Redis and a worker process:
 * the campaign seed decides every generated case, the scenario statistics
 * come from each case's structure (coordinator/classify) and reach the
 * summary, the corpus keeps cases, and a later campaign mutates them.
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { CAMPAIGN_GENERATOR, CaseSource } from '../../coordinator/farm/case-source.ts';
import { Coordinator } from '../../coordinator/farm/coordinator.ts';
import { summaryLines } from '../../coordinator/farm/progress.ts';
import { SCENARIO_TAGS, classifyCase } from '../../coordinator/classify/scenarios.ts';
import type { Case } from '../../model/index.ts';
import type { CaseOrigin } from '../../worker/farm/protocol.ts';
import { quietLog, tempDir, useFarmRedis, waitForWorkers, workerProc } from './helpers/farm.ts';
import { type TestRedis, uniqueNamespace } from './helpers/redis.ts';

let redis: TestRedis;
let client: Redis;
const dirs: string[] = [];

useFarmRedis((r, c) => {
  redis = r;
  client = c;
}, dirs);

interface Enqueued {
  id: string;
  origin: CaseOrigin;
  parent?: string;
}

function coordinator(ns: string, dataDir: string, seed: number, cases: number, mutationRate: number) {
  const c = new Coordinator({ redisUrl: redis.url, namespace: ns, dataDir, log: quietLog(), targets: ['model'], budget: { cases }, seed, seeds: false, mutationRate, batchSize: 16 });
  const ins = new Map<number, Enqueued>();
  c.on('enqueued', (e) => {
    for (const x of e.cases) ins.set(x.index, { id: x.id, origin: x.origin, ...(x.parent ? { parent: x.parent } : {}) });
  });
  return { c, ins };
}

describe('a campaign with the case generator on the model', () => {
  it('is reproducible from its seed, counts scenarios from structure, keeps a corpus and mutates it', async () => {
    const ns = uniqueNamespace('gen');
    const dataDir = tempDir('gen');
    dirs.push(dataDir);
    const w = workerProc(redis.url, ns, ['model']);
    await waitForWorkers(client, ns, [w.pid]);

    const N = 120;
    const SEED = 777;
    const first = coordinator(ns, dataDir, SEED, N, 0);
    const s1 = await first.c.run();
    expect(s1).toMatchObject({ finished: true, generator: 'generator' });
    const counts = s1.targets[0]!.counts;
    expect(counts.executed).toBe(N);
    // The model agrees with itself on every generated case, and can build them all.
    expect(counts.pass).toBe(N);

    // Case i is a function of (seed, i): made again here, apart from the farm, it is the same case.
    const again = await new CaseSource({ seed: SEED, target: 'model', generator: CAMPAIGN_GENERATOR, mutationRate: 0 }).batch(0, N);
    expect(new Map(again.map((e) => [e.index, e.id]))).toEqual(new Map([...first.ins].map(([i, e]) => [i, e.id])));
    expect([...first.ins.values()].every((e) => e.origin === 'generated')).toBe(true);

    // The statistics count what the classifier sees in each case's structure (names and meta cleared: no tags used).
    const expected: Record<string, number> = {};
    for (const e of again) {
      const c = e.case as Case;
      const tags = classifyCase({ ...c, name: 'anonymous', meta: { origin: 'manual' } });
      expect(tags).toEqual(e.scenarios ?? []);
      for (const t of tags.length ? tags : ['none']) expected[t] = (expected[t] ?? 0) + 1;
    }
    expect(s1.targets[0]!.scenarios).toEqual(expected);
    for (const tag of SCENARIO_TAGS) expect(expected[tag] ?? 0, tag).toBeGreaterThan(0);
    expect(summaryLines(s1).join('\n')).toMatch(/^scenarios exercised: S1 \d+, S2 \d+, S3 \d+, S4 \d+, S5 \d+/m);

    // The corpus kept cases that showed something new, indexed in Redis.
    const corpus = new Set(await client.zrange(`${ns}:corpus`, '0', '-1'));
    expect(corpus.size).toBeGreaterThan(0);
    expect(corpus.size).toBeLessThan(N);

    // A later campaign mutates corpus entries as well as generating fresh cases.
    const second = coordinator(ns, dataDir, SEED + 1, 60, 0.5);
    const s2 = await second.c.run();
    expect(s2.targets[0]!.counts).toMatchObject({ executed: 60, pass: 60 });
    const mutated = [...second.ins.values()].filter((e) => e.origin === 'mutated');
    expect(mutated.length).toBeGreaterThan(10);
    expect(mutated.length).toBeLessThan(60);
    const corpusNow = new Set(await client.zrange(`${ns}:corpus`, '0', '-1'));
    for (const m of mutated) expect(corpusNow.has(m.parent!)).toBe(true);

    w.child.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 240_000);
});
