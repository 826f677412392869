/**
 * Minimization cost (issue 6): "executions and seconds to minimize a 200-op
 * case with one planted divergent op to <= 3 ops (goal <= 200 executions)".
 *
 * The divergence is planted by a TEST-ONLY wrong target
 * (test/triage/helpers/planted-bug.ts): it answers like the model except that
 * an io_uring read after a covering write and an fsync of its object returns
 * garbage. The case: 200 ops in 3 threads with barriers over a loop device on
 * a file on ext4 plus two more files; the minimal case is 3 ops on a bare disk.
 *
 * Figures (the goal is on executions, so the figure is 200 / executions, >= 1
 * when met):
 * - executions until the case first had <= 3 ops, with the full pipeline
 *   (confirm 3 runs, then extract, slicing, ...);
 * - the same with the generic slicer alone (no extract stage): what the
 *   pipeline costs without the hint the divergence gives;
 * - total executions of the whole pipeline (stack, paths and numbers too), and
 *   seconds (model-judged runs take about a millisecond each here; on a kernel
 *   target each execution costs one case run, seconds to minutes).
 * - the same minimization the way the farm runs it: every candidate a job on
 *   the exec queue of a private redis-server, run by two `blockfarm worker`
 *   processes serving the test-only target (QueueExecutor, 8 candidates in
 *   flight): executions and seconds, queue round trips included.
 * PEER: none (no other minimizer in the repository); the goal is absolute.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type MinimizeOptions, minimize } from '../coordinator/triage/minimize.ts';
import { QueueExecutor } from '../coordinator/triage/queue-executor.ts';
import { parseRedisUrl, redisOptions } from '../infra/redis/connection.ts';
import { EmbeddedRedis } from '../infra/redis/server.ts';
import { liveWorkers } from '../worker/farm/registry.ts';
import { PlantedBugExecutor, plantedCase } from '../test/triage/helpers/planted-bug.ts';
import type { Benchmark, Row } from './harness.ts';

const GOAL = { min: 1, text: '<= 200 executions (figure = 200 / executions)' };

async function measure(skip: MinimizeOptions['skip']): Promise<{ toThree: number; total: number; secs: number; ops: number; layers: number }> {
  const { theCase, planted } = plantedCase(200, 7);
  const ex = new PlantedBugExecutor();
  let toThree = Number.POSITIVE_INFINITY;
  const t0 = performance.now();
  const r = await minimize(ex, theCase, {
    confirmRuns: 3,
    skip,
    onProgress: (p) => {
      if (p.size.ops <= 3 && p.executions < toThree) toThree = p.executions;
    },
  });
  const secs = (performance.now() - t0) / 1000;
  const ids = r.minimized.program.threads.flatMap((t) => t.ops.map((o) => o.id)).sort((a, b) => a - b);
  const want = [planted.write, planted.fsync, planted.read].sort((a, b) => a - b);
  if (JSON.stringify(ids) !== JSON.stringify(want)) throw new Error(`minimized to ops ${ids.join(',')}, expected ${want.join(',')}`);
  if (ex.executions !== r.executions) throw new Error(`executor saw ${ex.executions} runs, minimizer counted ${r.executions}`);
  return { toThree, total: r.executions, secs, ops: ids.length, layers: r.minimized.stack.layers.length };
}

const ROOT = new URL('..', import.meta.url).pathname;

/** The minimization through the farm: a private redis-server, two worker processes, the exec queue. */
async function measureFarm(): Promise<{ total: number; toThree: number; secs: number } | { skipped: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'blockfarm-bench-triage-'));
  const redis = new EmbeddedRedis({ dir, appendOnly: false });
  try {
    await redis.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return { skipped: `no redis-server: ${(err as Error).message}` };
  }
  const ns = 'benchtriage';
  const target = 'testonly_planted:model';
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BLOCKFARM_')));
  const workers = [0, 1].map(() =>
    spawn(process.execPath, ['bin/blockfarm.js', 'worker', '--redis', redis.url, '--namespace', ns, '--target', target, '--concurrency', '2'], {
      cwd: ROOT,
      env: { ...base, BLOCKFARM_LOG_LEVEL: 'warn', BLOCKFARM_TARGET_PLUGINS: join(ROOT, 'test/triage/helpers/planted-target.ts') },
      stdio: 'ignore',
    }),
  );
  const conn = new Redis(redisOptions(parseRedisUrl(redis.url), { blocking: true }));
  conn.on('error', () => {});
  let ex: QueueExecutor | undefined;
  try {
    const until = Date.now() + 60_000;
    while ((await liveWorkers(conn, ns)).length < 2) {
      if (Date.now() > until) throw new Error('the bench workers did not register');
      await new Promise((r) => setTimeout(r, 100));
    }
    ex = await QueueExecutor.open({ connection: conn, namespace: ns, target, coordinator: 'bench-1-000000' });
    const { theCase } = plantedCase(200, 7);
    let toThree = Number.POSITIVE_INFINITY;
    const t0 = performance.now();
    const r = await minimize(ex, theCase, { confirmRuns: 3, concurrency: 8, onProgress: (p) => void (p.size.ops <= 3 && p.executions < toThree && (toThree = p.executions)) });
    const secs = (performance.now() - t0) / 1000;
    if (!r.reproduced || r.minimized.program.threads.flatMap((t) => t.ops).length > 3) throw new Error('the farm minimization did not reach 3 ops');
    return { total: r.executions, toThree, secs };
  } finally {
    await ex?.close();
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => new Promise((res) => (w.exitCode !== null ? res(undefined) : w.once('exit', res)))));
    conn.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const benchmarks: Benchmark[] = [
  {
    name: 'triage minimize',
    description: '200-op case with one planted divergent op (test-only wrong target) down to <= 3 ops',
    async run(): Promise<Row[]> {
      const full = await measure([]);
      const plain = await measure(['extract']);
      return [
        {
          name: 'executions to <= 3 ops (pipeline)',
          figure: 200 / full.toThree,
          unit: '200/executions',
          goal: GOAL,
          note: `${full.toThree} executions to <= 3 ops; whole pipeline ${full.total} executions in ${full.secs.toFixed(2)} s, ending at ${full.ops} ops on ${full.layers} layer(s)`,
        },
        {
          name: 'executions to <= 3 ops (slice only)',
          figure: 200 / plain.toThree,
          unit: '200/executions',
          goal: GOAL,
          note: `${plain.toThree} executions to <= 3 ops without the extract stage; whole pipeline ${plain.total} executions in ${plain.secs.toFixed(2)} s`,
        },
        { name: 'seconds, whole pipeline', figure: full.secs, unit: 's', note: 'wall time with the in-process test-only target (about 1 ms per run)' },
        ...(await (async (): Promise<Row[]> => {
          const farm = await measureFarm();
          if ('skipped' in farm) return [{ name: 'seconds, through the farm', figure: Number.NaN, unit: 's', note: `skipped: ${farm.skipped}` }];
          return [
            {
              name: 'executions to <= 3 ops (through the farm)',
              figure: 200 / farm.toThree,
              unit: '200/executions',
              goal: GOAL,
              note: `${farm.toThree} executions to <= 3 ops, each a job on exec-testonly_planted-model run by one of 2 worker processes (8 in flight)`,
            },
            { name: 'seconds, through the farm', figure: farm.secs, unit: 's', note: `whole pipeline ${farm.total} executions in ${farm.secs.toFixed(1)} s (${((1000 * farm.secs) / farm.total).toFixed(0)} ms per execution with queue round trips; 8 in flight)` },
          ];
        })()),
      ];
    },
  },
];
