/**
 * Triage end to end on a real kernel in a QEMU guest (the kernel infra/setup.sh
 * fetches): a divergence caused by a fault the model is not told about is
 * found, minimized to its few ops and layers, filed and reported; the
 * report's repro.c compiles with `gcc repro.c -luring`, and run in a VM of
 * that kernel it fails (exit 1, printing what the model allowed and what it
 * got) with the fault and passes without it; `blockfarm repro SIG --target
 * qemu:ID` runs it in a VM in one command; bisection over a series of real
 * QEMU targets (honest, then faulty) finds the change point.
 *
 * Then the same through the farm: a worker process serving the test-only
 * target on that kernel, the triage consumer filing the finding in Redis and
 * minimizing it with every candidate a job on the worker's exec queue.
 *
 * The fault (test-only, honestly labelled; helpers/flakey-qemu-target.ts):
 * the QEMU target's plan hook, and the reproducer's set-up hook, build every
 * dm-linear layer as dm-flakey dropping writes (as test/qemu's negative test
 * does). The case says dm-linear, so the model expects the writes there.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirSignatureStore, TargetExecutor, bisect, fileFinding, processSignature, signaturesRoot } from '../../coordinator/triage/index.ts';
import { runReproInVm } from '../../coordinator/triage/repro-vm.ts';
import { type CaseInput, validateCase } from '../../model/index.ts';
import type { ExecPlan } from '../../worker/executor/protocol.ts';
import { flakeyInsteadOfLinear } from './helpers/flakey-qemu-target.ts';
import { createQemuTarget } from '../../worker/targets/qemu/factory.ts';
import type { QemuTarget } from '../../worker/targets/qemu/qemu-target.ts';
import { blockfarm, testKernel } from '../qemu/helpers.ts';
import { DataDir } from '../../coordinator/farm/data-dir.ts';
import { TriageConsumer } from '../../coordinator/farm/triage.ts';
import { QueueExecutor, type MinimizeResult, signatureOf } from '../../coordinator/triage/index.ts';
import { PROTOCOL_VERSION, TRIAGE_QUEUE, type TriageJobData, caseId } from '../../worker/farm/protocol.ts';
import { Queue } from 'bullmq';
import { ROOT, killAll, quietLog, redisClient, waitFor, waitForWorkers, workerProc } from '../farm/helpers/farm.ts';
import { type TestRedis, startTestRedis, uniqueNamespace } from '../farm/helpers/redis.ts';

const MiB = 1024 * 1024;


const original: CaseInput = {
  format: 'blockfarm-case/1',
  name: 'qemu-fault-e2e',
  seed: 4711,
  stack: {
    layers: [
      { id: 'd0', kind: 'disk', size: 16 * MiB },
      { id: 'lin', kind: 'dm-linear', on: 'd0' },
      { id: 'd1', kind: 'disk', size: 32 * MiB },
      { id: 'fs1', kind: 'fs', on: 'd1', type: 'ext4' },
      { id: 'f1', kind: 'file', on: 'fs1', name: 'f1', size: 0 },
    ],
  },
  program: {
    threads: [
      {
        ops: [
          { kind: 'write', id: 1, target: 'lin', offset: 0, length: 8192, direct: true },
          { kind: 'write', id: 2, target: 'lin', offset: 1 * MiB, length: 16384, direct: true, via: 'pvec', vectors: 2 },
          { kind: 'fsync', id: 3, target: 'lin' },
          { kind: 'read', id: 4, target: 'lin', offset: 1 * MiB, length: 8192, direct: true, via: 'io_uring' },
          { kind: 'barrier', id: 5, name: 'end' },
        ],
      },
      {
        ops: [
          { kind: 'write', id: 6, target: 'f1', offset: 0, length: 16384 },
          { kind: 'fsync', id: 7, target: 'f1' },
          { kind: 'read', id: 8, target: 'f1', offset: 4096, length: 8192 },
          { kind: 'barrier', id: 9, name: 'end' },
        ],
      },
    ],
  },
};

const targets: QemuTarget[] = [];
const base = mkdtempSync(join(tmpdir(), 'blockfarm-triage-qemu-'));

beforeAll(async () => {
  await testKernel();
}, 600_000);

let redis: TestRedis | undefined;

afterAll(async () => {
  await killAll();
  await redis?.stop();
  for (const t of targets) await t.close();
  rmSync(base, { recursive: true, force: true });
});

describe('triage end to end in a QEMU guest', () => {
  it('finds, minimizes and reports a fault the model is not told about; repro.c fails in a VM with it and passes without', async () => {
    const kernel = await testKernel();
    const name = `qemu:${kernel.info.id}`;
    const v = validateCase(original);
    if (!v.ok) throw new Error(JSON.stringify(v.issues));
    const honest = await createQemuTarget(name);
    const faulty = await createQemuTarget(name, { planHookForTests: (plan: ExecPlan) => ({ ...plan, setup: flakeyInsteadOfLinear(plan.setup) }) });
    targets.push(honest, faulty);

    // The kernel does what the model allows on the stack the case names...
    const clean = await new TargetExecutor(honest).run(v.value);
    expect(clean.kind, JSON.stringify(clean).slice(0, 600)).toBe('pass');
    // ...and diverges when dm-flakey is underneath instead.
    const executor = new TargetExecutor(faulty);
    const first = await executor.run(v.value);
    expect(first.kind, JSON.stringify(first).slice(0, 600)).toBe('divergence');

    const data = join(base, 'data');
    const store = new DirSignatureStore(signaturesRoot(data));
    const filed = await fileFinding(store, { outcome: first, theCase: v.value, target: name, kernelVersion: `${kernel.info.package} ${kernel.info.packageVersion}` });
    expect(filed?.signature.parts).toMatchObject({ source: 'model', class: 'wrong-data', dataClass: 'zeroes', top: 'dm-linear' });

    const p = await processSignature(store, data, filed!.record.id, { executor, minimize: { confirmRuns: 1, maxExecutions: 150 }, kernelConfig: readFileSync(kernel.config, 'utf8') });
    const m = p.minimize!;
    expect(m.reproduced).toBe(true);
    const ops = m.minimized.program.threads.flatMap((t) => t.ops);
    console.log(`minimized on ${name} in ${m.executions} runs (${(m.elapsedMs / 1000).toFixed(0)} s): ${ops.map((o) => `${o.id}:${o.kind}`).join(' ')}; layers ${m.minimized.stack.layers.map((l) => l.kind).join('>')}`);
    expect(ops.length).toBeLessThanOrEqual(3);
    expect(ops.map((o) => o.kind)).toEqual(expect.arrayContaining(['write', 'read']));
    expect(m.minimized.program.threads).toHaveLength(1);
    // The fault lives in the dm-linear layer: the stack keeps it and drops everything else.
    expect(m.minimized.stack.layers.map((l) => l.kind)).toEqual(['disk', 'dm-linear']);
    expect(m.finalRate.reproduced).toBe(m.finalRate.runs);

    const dir = p.report.dir;
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(['report.md', 'report.json', 'case.json', 'minimized.json', 'repro.c', 'repro.sh', 'kernel.config']));
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md).toContain(kernel.info.packageVersion);
    expect(md).toMatch(/Warning/);

    // repro.c compiles as the report says, with nothing of blockfarm.
    execFileSync('gcc', ['-o', join(base, 'repro'), join(dir, 'repro.c'), '-luring']);

    // In a VM of the same kernel: it fails with the fault underneath...
    const reproC = readFileSync(join(dir, 'repro.c'), 'utf8');
    const withFault = await runReproInVm(m.minimized, reproC, { target: name, setupHookForTests: flakeyInsteadOfLinear });
    expect(withFault.setupFailed).toBeUndefined();
    expect(withFault.exit, withFault.stdout.join('\n')).toBe(1);
    expect(withFault.stdout.join('\n')).toMatch(/DIVERGENCE: .*the model allows .*; got /);
    // ...and passes without it.
    const withoutFault = await runReproInVm(m.minimized, reproC, { target: name });
    expect(withoutFault.exit, withoutFault.stdout.join('\n') + withoutFault.stderr.join('\n')).toBe(0);
    expect(withoutFault.stdout.join('\n')).toMatch(/RESULT: every op did what the model allows/);
    console.log(`repro.c in a VM of ${withFault.kernel}, with the fault:\n${withFault.stdout.join('\n')}\nwithout it:\n${withoutFault.stdout.join('\n')}`);

    // Bisection over a series of real QEMU targets with a known change point: the first two build the
    // stack honestly, the last three with the test-only fault (one kernel; the series stands for package versions).
    const series = ['v1', 'v2', 'v3', 'v4', 'v5'];
    const bisected = await bisect(m.minimized, series, (k) => (series.indexOf(k) < 2 ? new TargetExecutor(honest) : executor), { runsPerVersion: 1, signature: filed!.signature });
    expect(bisected).toMatchObject({ found: true, direction: 'introduced', first: 'v3', last: 'v2' });
    expect(bisected.confidence).toBeGreaterThan(0.9);

    // One command: the reproducer in a VM of that kernel (no fault there: it passes, exit 0).
    const cli = await blockfarm(['repro', filed!.record.id.slice(0, 24), '--standalone', '--target', name, '--data-dir', data]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/RESULT: every op did what the model allows/);
  }, 1_500_000);

  it('through the farm: a worker process on the real kernel runs the candidates, the consumer files and minimizes', async () => {
    const kernel = await testKernel();
    const FLAKEY = 'testonly_flakey:qemu';
    redis = await startTestRedis();
    const client = redisClient(redis.url);
    const ns = uniqueNamespace('triageqemu');
    const worker = workerProc(redis.url, ns, [FLAKEY], ['--concurrency', '2'], { BLOCKFARM_TARGET_PLUGINS: join(ROOT, 'test/triage/helpers/flakey-qemu-target.ts') });
    await waitForWorkers(client, ns, [worker.pid]);
    const data = join(base, 'farm-data');
    const minimized: Array<MinimizeResult | undefined> = [];
    const consumer = new TriageConsumer({
      connection: redisClient(redis.url).duplicate({ maxRetriesPerRequest: null }),
      redis: client,
      namespace: ns,
      dataDir: new DataDir(data),
      log: quietLog(),
      minimizeBudget: { maxExecutions: 100, concurrency: 2, confirmRuns: 1 },
      retest: false,
      onMinimized: (_s, m) => minimized.push(m),
    });
    await consumer.start();
    const triage = new Queue(TRIAGE_QUEUE, { connection: redisClient(redis.url), prefix: ns });
    const probe = await QueueExecutor.open({ connection: redisClient(redis.url).duplicate({ maxRetriesPerRequest: null }), namespace: ns, target: FLAKEY, coordinator: 'test-1-abcdef' });
    try {
      const v = validateCase(original);
      if (!v.ok) throw new Error('invalid');
      // Found on the farm: the case as a job on the worker's exec queue.
      const outcome = await probe.run(v.value);
      expect(outcome.kind, JSON.stringify(outcome).slice(0, 600)).toBe('divergence');
      if (outcome.kind !== 'divergence') return;
      const job: TriageJobData = {
        v: PROTOCOL_VERSION, coordinator: 'test-1-abcdef', campaign: 'seed-9', target: FLAKEY, worker: 'w', execJob: 'seed-9-x-0-1',
        caseId: caseId(v.value), signature: signatureOf(outcome, v.value).id, scenarios: [], outcome, case: v.value,
      };
      await triage.add('divergence', job, { jobId: 'seed-9-a' });
      await waitFor('the minimization on the farm', async () => minimized.length > 0, 1_200_000, 500);
      const m = minimized[0]!;
      expect(m?.reproduced).toBe(true);
      const ops = m!.minimized.program.threads.flatMap((t) => t.ops);
      console.log(`minimized through the farm on ${kernel.info.id} in ${m!.executions} runs (${(m!.elapsedMs / 1000).toFixed(0)} s): ${ops.map((o) => `${o.id}:${o.kind}`).join(' ')}`);
      expect(ops.length).toBeLessThanOrEqual(3);
      expect(m!.minimized.stack.layers.map((l) => l.kind)).toEqual(['disk', 'dm-linear']);
      const sig = JSON.parse((await client.hget(`${ns}:signatures`, job.signature))!) as { count: number; reproduction?: { case: string } };
      expect(sig).toMatchObject({ count: 1, reproduction: { case: 'minimized' } });
      expect(readdirSync(join(data, 'reports', job.signature))).toEqual(expect.arrayContaining(['report.md', 'minimized.json', 'repro.c', 'repro.sh']));
    } finally {
      await probe.close();
      await triage.close();
      await consumer.close();
      worker.child.kill('SIGTERM');
      await worker.exited;
      client.disconnect();
    }
  }, 1_500_000);
});
