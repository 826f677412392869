/**
 * The farm's triage: the one path every finding takes after a worker reports
 * it, built on coordinator/triage (signatures, the signature store,
 * minimization, reports and reproducers). It runs in the coordinator and
 * consumes two queues:
 *
 * `triage` (jobs TriageJobData, worker/farm/protocol.ts; one per finding):
 *   - signs the finding (coordinator/triage/signature.ts) and files it in the
 *     store (RedisSignatureStore: Redis + <data>/reports/<id>/): counts,
 *     first and last seen, targets and kernels (with the Debian package
 *     version where this machine has the kernel), lifecycle status 'new';
 *     a retried job is counted once (<ns>:triage:filed);
 *   - writes the report folder (report.md, report.json, case.json, repro.sh,
 *     repro.c, console.log, kernel.config) when the signature is new or is
 *     seen on a new target or kernel, and every 100th occurrence;
 *   - queues a 'minimize' job for a new signature.
 *
 * `triage-work` (jobs TriageWorkData):
 *   - 'minimize' (job id `minimize-<sig>`): minimizes the signature's case
 *     with every candidate run on the workers of the target that found it
 *     (QueueExecutor: many candidates at once), within a budget of
 *     executions and time, logs the progress, records the reproduction rate
 *     and the minimized case, and rewrites the report folder;
 *   - 'retest' (job id `retest-<sig>-<encoded target>`): runs an open
 *     signature's case (the minimized one if any) on a kernel the farm had
 *     not seen, `retestRuns` times, and records whether it is still there.
 *
 * New kernels: every `retestEveryMs` the consumer reads the worker registry;
 * a target served by a live worker (other than the model) whose kernel
 * (kernelOfTarget: qemu:<kernel> -> <kernel>) is not in <ns>:triage:kernels
 * is a kernel new to the farm (a worker started after `blockfarm kernels
 * fetch`, or `npm start` after fetching a newer kernel): it is added, and
 * every open signature not seen or re-tested there gets a 'retest' job.
 * Kernels findings were filed on are added as they are filed.
 *
 * Closing abandons running work jobs instead of waiting for a long
 * minimization: they go back to the queue (or, if that fails, return when
 * their lock lapses) for the next coordinator on the namespace.
 *
 * Redis (besides the store's <ns>:signatures):
 *   <ns>:triage:filed    set of <campaign>/<encoded target>/<case id> filed
 *   <ns>:triage:kernels  set of kernels the farm has seen
 *   <ns>:sigs            hash signature id -> occurrences (the campaign summary's count)
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { type Job, Queue, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../infra/log.ts';
import { loadFetched } from '../../infra/kernels/index.ts';
import { type Case, validateCase } from '../../model/index.ts';
import { TRIAGE_QUEUE, type TriageJobData, encodeTargetName, processId } from '../../worker/farm/protocol.ts';
import { liveWorkers } from '../../worker/farm/registry.ts';
import { writeReport } from '../triage/report.ts';
import { processSignature } from '../triage/index.ts';
import { QueueExecutor } from '../triage/queue-executor.ts';
import { RedisSignatureStore } from '../triage/redis-store.ts';
import { type Finding, type Signature, kernelOfTarget, showsSignature, signatureOf } from '../triage/signature.ts';
import { OPEN_STATUSES, type SignatureRecord, signaturesToRetest } from '../triage/store.ts';
import { signatureDir, signaturesRoot } from '../triage/files.ts';
import type { MinimizeProgress, MinimizeResult } from '../triage/minimize.ts';
import type { DataDir } from './data-dir.ts';

export const TRIAGE_WORK_QUEUE = 'triage-work';
const MAX_OCCURRENCE_LINES = 1000;

export interface TriageWorkData {
  v: 1;
  signature: string;
  /** Where the case runs. */
  target: string;
}

export interface MinimizeBudget {
  /** @defaultValue 200 */
  maxExecutions?: number;
  /** @defaultValue 900000 (15 min) */
  maxMs?: number;
  /** Candidates in flight at once. @defaultValue 4 */
  concurrency?: number;
  /** Runs of the original to measure the rate. @defaultValue 3 */
  confirmRuns?: number;
}

export interface TriageOptions {
  /** For the queue workers (BullMQ may block on it). */
  connection: Redis;
  /** For commands. */
  redis: Redis;
  namespace: string;
  dataDir: DataDir;
  log: Logger;
  /** Recorded in the exec jobs of minimization. @defaultValue processId() */
  coordinatorId?: string;
  /** Minimize new signatures on the workers. @defaultValue true */
  minimize?: boolean;
  minimizeBudget?: MinimizeBudget;
  /** Signatures minimized (or re-tested) at once. @defaultValue 2 */
  workConcurrency?: number;
  /** Re-test open signatures on kernels new to the farm. @defaultValue true */
  retest?: boolean;
  /** @defaultValue 30000 */
  retestEveryMs?: number;
  /** Runs per re-test. @defaultValue 3 */
  retestRuns?: number;
  /** Called after each finding is filed (tests, progress). */
  onFiled?: (d: TriageJobData, isNew: boolean) => void;
  /** Called when a minimization ends. */
  onMinimized?: (signature: string, m: MinimizeResult | undefined) => void;
  /** Called when a re-test ends. */
  onRetested?: (signature: string, kernel: string, shown: number, runs: number) => void;
}

/** A signature record as the Signature the matchers take (its aliases count as alternative ids). */
export function signatureOfRecord(r: SignatureRecord): Signature {
  return { id: r.id, key: r.key, title: r.title, parts: r.parts, altIds: [...r.altIds, ...r.aliases] };
}

export class TriageConsumer {
  readonly store: RedisSignatureStore;
  private fileWorker: Worker | undefined;
  private workWorker: Worker | undefined;
  private workQueue: Queue | undefined;
  private retestTimer: NodeJS.Timeout | undefined;
  private readonly executors = new Set<QueueExecutor>();
  private readonly versions = new Map<string, Promise<{ version?: string; config?: string }>>();
  private readonly coordinatorId: string;
  private readonly aborts = new Set<AbortController>();
  private workConnection: Redis | undefined;
  private closing = false;

  constructor(private readonly opts: TriageOptions) {
    this.store = new RedisSignatureStore({ redis: opts.redis, namespace: opts.namespace, root: signaturesRoot(opts.dataDir.root) });
    this.coordinatorId = opts.coordinatorId ?? processId();
  }

  async start(): Promise<void> {
    const { namespace: prefix, log } = this.opts;
    this.workQueue = new Queue(TRIAGE_WORK_QUEUE, { connection: this.opts.redis, prefix });
    this.workQueue.on('error', (err) => log.debug({ err: (err as Error).message }, 'triage work queue error'));
    this.fileWorker = new Worker(TRIAGE_QUEUE, (job) => this.file(job), { connection: this.opts.connection, prefix, concurrency: 1, autorun: true });
    this.fileWorker.on('error', (err) => log.debug({ err: err.message }, 'triage queue error'));
    this.fileWorker.on('failed', (job, err) => log.warn({ job: job?.id, err: err.message }, 'triage job failed'));
    this.workConnection = this.opts.connection.duplicate();
    this.workConnection.on('error', () => {});
    this.workWorker = new Worker(TRIAGE_WORK_QUEUE, (job, token) => this.work(job, token), {
      connection: this.workConnection,
      prefix,
      concurrency: this.opts.workConcurrency ?? 2,
      // A coordinator that stops abandons its minimizations; the next one takes them up.
      maxStalledCount: 5,
      autorun: true,
    });
    this.workWorker.on('error', (err) => log.debug({ err: err.message }, 'triage work error'));
    this.workWorker.on('failed', (job, err) => log.warn({ job: job?.id, err: err.message }, 'triage work failed'));
    await Promise.all([this.fileWorker.waitUntilReady(), this.workWorker.waitUntilReady()]);
    if (this.opts.retest !== false) {
      const every = this.opts.retestEveryMs ?? 30_000;
      void this.checkKernels();
      this.retestTimer = setInterval(() => void this.checkKernels(), every);
      this.retestTimer.unref();
    }
  }

  /** The Debian package version and .config of a kernel fetched on this machine, if it is. */
  private kernelFacts(kernel: string): Promise<{ version?: string; config?: string }> {
    let p = this.versions.get(kernel);
    if (!p) {
      p = (async () => {
        try {
          const k = await loadFetched(kernel);
          if (!k) return {};
          const config = await fsp.readFile(k.config, 'utf8').catch(() => undefined);
          return { version: `${k.info.package} ${k.info.packageVersion} (upstream ${k.info.upstream})`, ...(config ? { config } : {}) };
        } catch {
          return {};
        }
      })();
      this.versions.set(kernel, p);
    }
    return p;
  }

  /** The facts of the kernel a signature was first seen on (its report's kernel.config). */
  private firstKernelFacts(rec: SignatureRecord): Promise<{ version?: string; config?: string }> {
    return rec.first.target.startsWith('qemu:') ? this.kernelFacts(kernelOfTarget(rec.first.target)) : Promise.resolve({});
  }

  // ---------------------------------------------------------------- filing

  async file(job: Job): Promise<{ signature: string; isNew: boolean }> {
    const d = job.data as TriageJobData;
    const { redis, namespace: ns, log } = this.opts;
    const v = validateCase(d.case);
    if (!v.ok) throw new UnrecoverableError(`the finding's case is not valid: ${v.issues[0]?.path}: ${v.issues[0]?.message}`);
    const member = `${d.campaign}/${encodeTargetName(d.target)}/${d.caseId}`;
    if (!(await redis.sadd(`${ns}:triage:filed`, member))) return { signature: d.signature, isNew: false };
    try {
      const kernel = kernelOfTarget(d.target);
      const facts = d.target.startsWith('qemu:') ? await this.kernelFacts(kernel) : {};
      const signature = signatureOf(d.outcome, v.value, d.outcome.kind === 'divergence' ? undefined : d.outcome.log);
      const r = await this.store.record({
        signature,
        target: d.target,
        kernel,
        ...(facts.version ? { kernelVersion: facts.version } : {}),
        campaign: d.campaign,
        caseId: d.caseId,
        theCase: v.value,
      });
      const rec = r.record;
      await redis.hincrby(`${ns}:sigs`, rec.id, 1);
      if (d.target !== 'model') await redis.sadd(`${ns}:triage:kernels`, kernel);
      const dir = signatureDir(this.store.files.root, rec.id);
      if (r.isNew || r.newTarget || r.newKernel || rec.count % 100 === 0) {
        const original = (await this.store.getCase(rec.id, 'original')) ?? v.value;
        const minimized = await this.store.getCase(rec.id, 'minimized');
        // The first run that showed it stays the report's run; later occurrences only move the counts.
        const outcome = r.isNew ? d.outcome : ((await this.reportOutcome(dir)) ?? d.outcome);
        const config = (await this.firstKernelFacts(rec)).config;
        await writeReport(dir, {
          record: rec,
          original,
          ...(minimized ? { minimized } : {}),
          outcome,
          ...(config ? { kernelConfig: config } : {}),
        });
      }
      if (!r.isNew && rec.count <= MAX_OCCURRENCE_LINES) {
        await fsp.mkdir(dir, { recursive: true });
        await fsp.appendFile(join(dir, 'occurrences.jsonl'), `${JSON.stringify({ campaign: d.campaign, target: d.target, caseId: d.caseId, worker: d.worker, at: Date.now() })}\n`);
      }
      if (r.isNew || r.newTarget) log.info({ signature: rec.id, target: d.target, case: d.caseId, what: rec.title }, r.isNew ? 'new finding' : 'finding seen on another target');
      if (r.isNew && this.opts.minimize !== false) await this.queueWork('minimize', rec.id, d.target);
      this.opts.onFiled?.(d, r.isNew);
      return { signature: rec.id, isNew: r.isNew };
    } catch (err) {
      await redis.srem(`${ns}:triage:filed`, member).catch(() => undefined);
      throw err;
    }
  }

  private async reportOutcome(dir: string): Promise<Finding | undefined> {
    try {
      const j = JSON.parse(await fsp.readFile(join(dir, 'report.json'), 'utf8')) as { outcome?: Finding };
      return j.outcome;
    } catch {
      return undefined;
    }
  }

  private async queueWork(kind: 'minimize' | 'retest', signature: string, target: string): Promise<void> {
    const data: TriageWorkData = { v: 1, signature, target };
    const jobId = kind === 'minimize' ? `minimize-${signature}` : `retest-${signature}-${encodeTargetName(target)}`;
    await this.workQueue!.add(kind, data, { jobId, attempts: 1, removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } });
  }

  // ---------------------------------------------------------------- minimize, re-test

  private async executor(target: string): Promise<QueueExecutor> {
    const ex = await QueueExecutor.open({ connection: this.opts.connection, namespace: this.opts.namespace, target, coordinator: this.coordinatorId });
    this.executors.add(ex);
    return ex;
  }

  private async work(job: Job, token: string | undefined): Promise<unknown> {
    const d = job.data as TriageWorkData;
    const rec = await this.store.get(d.signature);
    if (!rec) return { skipped: 'no such signature' };
    if (!OPEN_STATUSES.has(rec.status)) return { skipped: `status ${rec.status}` };
    const abort = new AbortController();
    this.aborts.add(abort);
    const ex = await this.executor(d.target);
    try {
      if (this.closing) throw new Error('closing');
      return job.name === 'retest' ? await this.retest(rec, d.target, ex) : await this.minimizeOne(job, rec, d.target, ex, abort.signal);
    } catch (err) {
      if (!this.closing) throw err;
      // Stopped by close(): the job goes back to the queue for the next coordinator, not to failed.
      await job.moveToWait(token);
      throw new WaitingError();
    } finally {
      this.aborts.delete(abort);
      this.executors.delete(ex);
      await ex.close();
    }
  }

  private async minimizeOne(job: Job, rec: SignatureRecord, target: string, ex: QueueExecutor, signal: AbortSignal): Promise<unknown> {
    const { log } = this.opts;
    const b = this.opts.minimizeBudget ?? {};
    const dir = signatureDir(this.store.files.root, rec.id);
    const facts = await this.firstKernelFacts(rec);
    const outcome = await this.reportOutcome(dir);
    let last = 0;
    const onProgress = (p: MinimizeProgress) => {
      void job.updateProgress({ stage: p.stage, executions: p.executions, elapsedMs: p.elapsedMs, size: p.size }).catch(() => undefined);
      if (Date.now() - last < 2000) return;
      last = Date.now();
      log.info({ signature: rec.id, target, stage: p.stage, executions: p.executions, ops: p.size.ops, layers: p.size.layers, threads: p.size.threads }, `minimizing: ${p.message}`);
    };
    log.info({ signature: rec.id, target }, 'minimizing on the farm');
    const p = await processSignature(this.store, this.opts.dataDir.root, rec.id, {
      executor: ex,
      minimize: {
        maxExecutions: b.maxExecutions ?? 200,
        maxMs: b.maxMs ?? 900_000,
        concurrency: b.concurrency ?? 4,
        confirmRuns: b.confirmRuns ?? 3,
        onProgress,
        signal,
      },
      ...(outcome ? { outcome } : {}),
      ...(facts.config ? { kernelConfig: facts.config } : {}),
    });
    const m = p.minimize;
    const size = (c: Case) => ({ ops: c.program.threads.reduce((n, t) => n + t.ops.length, 0), layers: c.stack.layers.length });
    log.info(
      {
        signature: rec.id,
        target,
        reproduced: m?.reproduced,
        executions: m?.executions,
        seconds: m ? Math.round(m.elapsedMs / 1000) : undefined,
        ...(m?.reproduced ? { from: size(m.original), to: size(m.minimized), rate: `${m.finalRate.reproduced}/${m.finalRate.runs}` } : {}),
        budgetExhausted: m?.budgetExhausted,
      },
      m?.reproduced ? 'minimized' : 'did not reproduce on the farm: report kept with the original case',
    );
    this.opts.onMinimized?.(rec.id, m);
    return { reproduced: m?.reproduced ?? false, executions: m?.executions ?? 0 };
  }

  private async retest(rec: SignatureRecord, target: string, ex: QueueExecutor): Promise<unknown> {
    const kernel = kernelOfTarget(target);
    const theCase = (await this.store.getCase(rec.id, 'minimized')) ?? (await this.store.getCase(rec.id, 'original'));
    if (!theCase) return { skipped: 'no case' };
    const runs = this.opts.retestRuns ?? 3;
    const sig = signatureOfRecord(rec);
    const outcomes = await Promise.all(Array.from({ length: runs }, () => ex.run(theCase)));
    if (this.closing) throw new Error('re-test stopped by close()');
    const valid = outcomes.filter((o) => o.kind !== 'infra-error' && o.kind !== 'unsupported');
    const shown = valid.filter((o) => showsSignature(o, theCase, sig, 'core')).length;
    if (!valid.length) {
      this.opts.log.warn({ signature: rec.id, target, why: outcomes[0]?.kind === 'unsupported' ? outcomes[0].reason : outcomes[0]?.kind === 'infra-error' ? outcomes[0].message : '?' }, 're-test gave no verdict');
      return { shown: 0, runs: 0 };
    }
    const updated = await this.store.recordRetest(rec.id, { kernel, target, runs: valid.length, reproduced: shown });
    const original = (await this.store.getCase(rec.id, 'original')) ?? theCase;
    const minimized = await this.store.getCase(rec.id, 'minimized');
    const dir = signatureDir(this.store.files.root, rec.id);
    const outcome = await this.reportOutcome(dir);
    await writeReport(dir, { record: updated, original, ...(minimized ? { minimized } : {}), ...(outcome ? { outcome } : {}) });
    this.opts.log.info({ signature: rec.id, kernel, shown, runs: valid.length }, shown ? 'still there on a new kernel' : 'not seen on a new kernel');
    this.opts.onRetested?.(rec.id, kernel, shown, valid.length);
    return { shown, runs: valid.length };
  }

  /** Kernels served by live workers that the farm has not seen: queue re-tests of the open signatures there. */
  async checkKernels(): Promise<string[]> {
    if (this.closing) return [];
    const { redis, namespace: ns, log } = this.opts;
    const fresh: string[] = [];
    try {
      const targets = new Set((await liveWorkers(redis, ns)).flatMap((w) => w.targets).filter((t) => t !== 'model' && t !== 'qemu'));
      for (const target of targets) {
        const kernel = kernelOfTarget(target);
        if (!(await redis.sadd(`${ns}:triage:kernels`, kernel))) continue;
        fresh.push(kernel);
        const items = await signaturesToRetest(this.store, kernel);
        if (items.length) log.info({ kernel, signatures: items.length }, 'a kernel new to the farm: re-testing the open signatures on it');
        for (const it of items) await this.queueWork('retest', it.record.id, target);
      }
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'checking for new kernels failed; will retry');
    }
    return fresh;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.retestTimer);
    await this.fileWorker?.close().catch(() => undefined);
    // Abandon running minimizations: their jobs go back to the queue for the next coordinator.
    // The worker's close() takes no new job and waits for the active ones, which end at once.
    for (const a of this.aborts) a.abort();
    await Promise.all([...this.executors].map((e) => e.close()));
    const closed = this.workWorker?.close().catch(() => undefined);
    const late = await Promise.race([closed?.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 15_000).unref())]);
    if (late) await this.workWorker?.close(true).catch(() => undefined);
    await this.workQueue?.close().catch(() => undefined);
    this.workConnection?.disconnect();
  }
}
