/**
 * The farm's own cost (issue 5): "the farm's own cost per case (queue,
 * judging, bookkeeping) on the model target beside raw BullMQ's cost per
 * no-op job measured in the same run on the same Redis (the farm at most 2x a
 * bare job), and coordinator memory after 1,000,000 model cases (<= 200 MB,
 * flat)".
 *
 * Everything runs on the bench's one pinned core (bench/run.ts pins the
 * process; children inherit it): a private redis-server, the coordinator,
 * the worker and its runner child. So a cost here is CPU time on one core,
 * summed over every process involved.
 *
 * 1. PEER, bare BullMQ: N no-op jobs through one queue on the same Redis (added
 *    in bulk, a Worker with concurrency 8 that returns at once, completed jobs
 *    removed). Cost = wall time / N.
 * 2. The farm: a campaign of N model cases (built-in stand-in generator: small
 *    disk write/read programs), a FarmWorker with one runner, the
 *    coordinator in this process. End to end cost = wall time / N. The farm's
 *    OWN cost subtracts what is not the farm: making the cases (the
 *    coordinator times its generator) and the model target predicting what a
 *    kernel would do (measured on the same cases in this process, warm). It
 *    keeps the queue round trips, batching, the runner's IPC, validation,
 *    judging (the oracle), result counting, corpus and triage bookkeeping.
 * 3. Coordinator memory: `blockfarm coordinator` as its own process, as
 *    deployed (NODE_OPTIONS = COORDINATOR_NODE_OPTIONS, as the systemd unit
 *    and the compose file set it), on a campaign of BLOCKFARM_BENCH_FARM_CASES
 *    model cases (default 1,000,000) served by one `blockfarm worker`, its RSS
 *    sampled from /proc every 2 s. Figures: RSS at the end and the growth over
 *    the second half of the run (flat = no per-case state kept). Without those
 *    options V8 lets the heap grow lazily (tens of MB more RSS for the same
 *    live heap of ~25-40 MB).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { BUILTIN_GENERATOR } from '../coordinator/farm/case-source.ts';
import { COORDINATOR_NODE_OPTIONS, Coordinator } from '../coordinator/farm/coordinator.ts';
import { createLogger } from '../infra/log.ts';
import { parseRedisUrl, redisOptions } from '../infra/redis/connection.ts';
import { EmbeddedRedis } from '../infra/redis/server.ts';
import { predictObservation, validateCase } from '../model/index.ts';
import { FarmWorker } from '../worker/farm/farm-worker.ts';
import type { Benchmark, Row } from './harness.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BARE_JOBS = 20_000;
const FARM_CASES = 20_000;
const MEMORY_CASES = Number(process.env.BLOCKFARM_BENCH_FARM_CASES ?? 1_000_000);
const MEMORY_GOAL_MB = 200;
const SEED = 20_261_121;

function client(url: string): Redis {
  const r = new Redis(redisOptions(parseRedisUrl(url), { blocking: true }));
  r.on('error', () => {});
  return r;
}

async function bareBullmq(url: string, n: number): Promise<number> {
  const qc = client(url);
  const wc = client(url);
  const prefix = `bench-bare-${process.pid}`;
  const queue = new Queue('noop', { connection: qc, prefix });
  let done = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const worker = new Worker('noop', async () => 0, { connection: wc, prefix, concurrency: 8, autorun: false });
  worker.on('completed', () => {
    if (++done === n) finish();
  });
  void worker.run();
  await worker.waitUntilReady();
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1000)
    await queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ name: 'noop', data: { i: i + k }, opts: { removeOnComplete: true } })));
  await all;
  const secs = (performance.now() - t0) / 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  qc.disconnect();
  wc.disconnect();
  return secs;
}

/** The model target's own work on these cases: predicting the observation (warm, median of 3). */
function predictSeconds(n: number): number {
  const cases = Array.from({ length: Math.min(n, 5000) }, (_, i) => {
    const v = validateCase(BUILTIN_GENERATOR.generate(SEED, i, 'model'));
    if (!v.ok) throw new Error('stand-in case invalid');
    return v;
  });
  for (const v of cases) predictObservation(v.value, v.info, 'model');
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    for (const v of cases) predictObservation(v.value, v.info, 'model');
    runs.push((performance.now() - t0) / 1000 / cases.length);
  }
  runs.sort((a, b) => a - b);
  return runs[1]! * n;
}

async function farm(url: string, n: number, dataDir: string): Promise<{ secs: number; generatorSecs: number; executed: number }> {
  const log = createLogger({ name: 'bench', level: 'warn' });
  const ns = `bench-farm-${process.pid}`;
  const worker = new FarmWorker({ redisUrl: url, targets: ['model'], concurrency: 1, namespace: ns, log });
  await worker.start();
  // Warm the runner (process start, module loading, JIT) outside the measure.
  const warm = new Coordinator({ redisUrl: url, log, targets: ['model'], budget: { cases: 2000 }, seed: SEED + 1, namespace: ns, dataDir, generator: 'builtin', seeds: false, mutationRate: 0, triage: false });
  await warm.run();
  const c = new Coordinator({ redisUrl: url, log, targets: ['model'], budget: { cases: n }, seed: SEED, namespace: ns, dataDir, generator: 'builtin', seeds: false, mutationRate: 0 });
  const t0 = performance.now();
  const s = await c.run();
  const secs = (performance.now() - t0) / 1000;
  await worker.close();
  return { secs, generatorSecs: s.generatorMs / 1000, executed: s.targets[0]!.counts.executed };
}

function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function cli(args: string[], nodeOptions = ''): ChildProcess {
  return spawn(process.execPath, ['bin/blockfarm.js', ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: nodeOptions, BLOCKFARM_LOG_LEVEL: 'warn', BLOCKFARM_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

interface MemoryRun {
  cases: number;
  secs: number;
  samples: Array<{ cases: number; rss: number }>;
}

async function coordinatorMemory(url: string, n: number, dataDir: string): Promise<MemoryRun> {
  const ns = `bench-mem-${process.pid}`;
  const probe = client(url);
  const worker = cli(['worker', '--redis', url, '--namespace', ns, '--target', 'model', '--concurrency', '1']);
  const t0 = performance.now();
  // As deployed (infra/deploy/blockfarm-coordinator.service): with COORDINATOR_NODE_OPTIONS.
  const coord = cli(['coordinator', '--redis', url, '--namespace', ns, '--targets', 'model', '--cases', String(n), '--campaign-seed', String(SEED), '--generator', 'builtin', '--no-seeds', '--mutation-rate', '0', '--data-dir', dataDir, '--json'], COORDINATOR_NODE_OPTIONS);
  let out = '';
  coord.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((r) => coord.once('exit', (code) => r(code)));
  const samples: MemoryRun['samples'] = [];
  let running = true;
  void exited.then(() => (running = false));
  let lastPrint = 0;
  while (running) {
    await new Promise((r) => setTimeout(r, 2000));
    const rss = rssMb(coord.pid!);
    const executed = Number((await probe.hget(`${ns}:campaign:seed-${SEED}:counts:model`, 'executed')) ?? 0);
    if (rss !== undefined && running) samples.push({ cases: executed, rss });
    // A long run (1M cases takes minutes): say how far it is.
    const now = performance.now();
    if (now - lastPrint >= 30_000 && rss !== undefined) {
      lastPrint = now;
      const secs = (now - t0) / 1000;
      const left = executed > 0 ? ((n - executed) * secs) / executed : undefined;
      console.log(`  coordinator memory run: ${fmt(executed)} of ${fmt(n)} cases after ${fmt(secs)} s, RSS ${fmt(rss)} MB${left !== undefined ? `, about ${fmt(left)} s left` : ''}`);
    }
  }
  const code = await exited;
  const secs = (performance.now() - t0) / 1000;
  worker.kill('SIGTERM');
  await new Promise((r) => worker.once('exit', r));
  probe.disconnect();
  if (code !== 0) throw new Error(`the coordinator exited ${code}`);
  const summary = JSON.parse(out) as { targets: Array<{ counts: { executed: number } }> };
  return { cases: summary.targets[0]!.counts.executed, secs, samples };
}

const fmt = (x: number, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

export const benchmarks: Benchmark[] = [
  {
    name: 'farm',
    description: `the farm's own cost per model case vs a bare BullMQ no-op job (same Redis, same core); coordinator memory over ${fmt(MEMORY_CASES)} model cases`,
    async run(): Promise<Row[]> {
      const dir = mkdtempSync(join(tmpdir(), 'blockfarm-bench-farm-'));
      const redis = new EmbeddedRedis({ dir: join(dir, 'redis'), appendOnly: false });
      await redis.start();
      try {
        await bareBullmq(redis.url, 2000); // warm
        const bareSecs = await bareBullmq(redis.url, BARE_JOBS);
        const bareUs = (bareSecs * 1e6) / BARE_JOBS;
        const f = await farm(redis.url, FARM_CASES, join(dir, 'data'));
        if (f.executed !== FARM_CASES) throw new Error(`the farm counted ${f.executed} of ${FARM_CASES} cases`);
        const predict = predictSeconds(FARM_CASES);
        const endUs = (f.secs * 1e6) / FARM_CASES;
        const ownSecs = f.secs - f.generatorSecs - predict;
        const ownUs = (ownSecs * 1e6) / FARM_CASES;
        const bareRate = 1e6 / bareUs;
        const mem = await coordinatorMemory(redis.url, MEMORY_CASES, join(dir, 'data-mem'));
        const last = mem.samples.at(-1)?.rss ?? 0;
        const half = mem.samples.filter((s) => s.cases >= mem.cases / 2);
        const growth = half.length >= 2 ? half.at(-1)!.rss - half[0]!.rss : 0;
        const maxRss = Math.max(...mem.samples.map((s) => s.rss));
        const curve = mem.samples
          .filter((_, i, a) => i % Math.max(1, Math.floor(a.length / 8)) === 0 || i === a.length - 1)
          .map((s) => `${fmt(s.cases / 1000)}k:${fmt(s.rss)}MB`)
          .join(' ');
        return [
          {
            name: 'bare BullMQ no-op job',
            figure: bareRate,
            unit: 'jobs/s',
            note: `${fmt(BARE_JOBS)} jobs in ${bareSecs.toFixed(2)} s = ${fmt(bareUs)} µs per job (addBulk, concurrency 8, removeOnComplete)`,
          },
          {
            name: 'farm end to end per model case',
            figure: FARM_CASES / f.secs,
            unit: 'cases/s',
            peer: { name: 'bare BullMQ no-op jobs/s', figure: bareRate },
            note: `${fmt(FARM_CASES)} cases in ${f.secs.toFixed(2)} s = ${fmt(endUs)} µs per case, of which generation ${fmt((f.generatorSecs * 1e6) / FARM_CASES)} µs (stand-in generator) and the model's prediction ${fmt((predict * 1e6) / FARM_CASES)} µs`,
          },
          {
            name: "farm's own cost per case (queue, judging, bookkeeping)",
            figure: 1e6 / ownUs,
            unit: 'cases/s',
            peer: { name: 'bare BullMQ no-op jobs/s', figure: bareRate },
            goal: { min: bareRate / 2, text: '>= 1/2 bare jobs/s (cost <= 2x a bare job)' },
            note: `${fmt(ownUs)} µs per case vs ${fmt(bareUs)} µs per bare job = ${(ownUs / bareUs).toFixed(2)}x (batches of 64; end to end minus generation minus prediction)`,
          },
          {
            name: `coordinator memory headroom after ${fmt(mem.cases)} model cases`,
            figure: MEMORY_GOAL_MB / last,
            unit: `x (${MEMORY_GOAL_MB} MB / RSS)`,
            goal: { min: 1, text: `RSS <= ${MEMORY_GOAL_MB} MB` },
            note: `RSS ${fmt(last)} MB at the end (max ${fmt(maxRss)} MB), ${fmt(growth, 1)} MB growth over the second half; ${fmt(mem.cases)} cases in ${fmt(mem.secs)} s; RSS by cases: ${curve}`,
          },
          {
            name: 'coordinator RSS flatness over the second half',
            figure: half.length >= 2 ? half[0]!.rss / half.at(-1)!.rss : 0,
            unit: 'x (RSS half-way / RSS at the end)',
            goal: { min: 0.9, text: '>= 0.9 (less than ~10% growth from 500k to 1M cases)' },
            note: `${fmt(growth, 1)} MB growth from ${fmt(half[0]?.cases ?? 0)} to ${fmt(half.at(-1)?.cases ?? 0)} cases; flat means no per-case state: counts live in Redis, cases and findings in files`,
          },
        ];
      } finally {
        await redis.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
];

