/**
 * A farm worker: takes batches from the exec queue of each of its targets,
 * runs them in runner children (./runner-pool.ts) and returns a BatchResult as
 * the job's return value (wire contract: ./protocol.ts). It registers and
 * heartbeats (./registry.ts).
 *
 * Failure handling:
 * - job data that is not an exec job, or a case that fails validation: the
 *   job fails at once with a one-line reason starting "refused:"
 *   (UnrecoverableError); nothing of it runs.
 * - the runner dies or the target fails: the job fails with the reason and
 *   BullMQ retries it (the coordinator splits a batch that keeps failing).
 * - this worker is killed: its lock lapses and the stalled check of any other
 *   worker returns the batch to the queue; no case is lost.
 * - close() (SIGTERM): no new batches; running batches get `shutdownGraceMs`
 *   to finish, then are asked to stop after their current case and go back
 *   to the queue (moveToWait), not counted as an attempt.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { type Job, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from '../../infra/log.ts';
import { connectRedis, parseRedisUrl, redisOptions } from '../../infra/redis/connection.ts';
import {
  type BatchResult, DEFAULT_NAMESPACE, PROTOCOL_VERSION, REFUSED_PREFIX, execQueueName, parseExecJobData, processId,
} from './protocol.ts';
import { WorkerHeartbeat } from './registry.ts';
import { type BatchEnd, RunnerPool } from './runner-pool.ts';
import { targetDefaults } from './target-defaults.ts';

export interface FarmWorkerOptions {
  redisUrl: string;
  /** Targets to serve, one exec queue each. */
  targets: string[];
  log: Logger;
  /** @defaultValue 'blockfarm' */
  namespace?: string;
  /**
   * Batches run at once, per target (one runner child each).
   * @defaultValue 1
   */
  concurrency?: number;
  /** @defaultValue false */
  allowHost?: boolean;
  dataDir?: string;
  /** @defaultValue the target kind's lockDurationMs (./target-defaults.ts) */
  lockDurationMs?: number;
  /**
   * How often this worker looks for stalled batches (of dead workers).
   * @defaultValue 30000
   */
  stalledIntervalMs?: number;
  /**
   * A batch whose worker died this many times fails (the coordinator then splits it).
   * @defaultValue 2
   */
  maxStalledCount?: number;
  /**
   * On close: how long running batches may finish before they go back to the queue.
   * @defaultValue 30000
   */
  shutdownGraceMs?: number;
  /** @defaultValue processId() */
  id?: string;
}

interface Active {
  job: Job;
  token: string | undefined;
  batch: string;
}

export interface FarmWorkerEvents {
  /** A target would not start here (TargetRefused): this worker stopped serving it; its batch went back to the queue. */
  'target-refused': [target: string, message: string];
}

export class FarmWorker extends EventEmitter<FarmWorkerEvents> {
  readonly id: string;
  readonly opts: Required<Omit<FarmWorkerOptions, 'dataDir' | 'lockDurationMs'>> & Pick<FarmWorkerOptions, 'dataDir' | 'lockDurationMs'>;
  private readonly log: Logger;
  private readonly workers = new Map<string, Worker>();
  private readonly refused = new Set<string>();
  private readonly connections: Redis[] = [];
  private readonly pools = new Map<string, RunnerPool>();
  private readonly active = new Map<string, Active>();
  private heartbeat: WorkerHeartbeat | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;
  /** Batches completed by this worker (for logs and tests). */
  batchesDone = 0;

  constructor(opts: FarmWorkerOptions) {
    super();
    if (!opts.targets.length) throw new Error('a worker needs at least one target');
    this.opts = {
      namespace: DEFAULT_NAMESPACE,
      concurrency: 1,
      allowHost: false,
      stalledIntervalMs: 30_000,
      maxStalledCount: 2,
      shutdownGraceMs: 30_000,
      id: opts.id ?? processId(),
      ...opts,
    };
    if (!Number.isInteger(this.opts.concurrency) || this.opts.concurrency < 1) throw new Error(`concurrency must be a positive integer, not ${this.opts.concurrency}`);
    this.id = this.opts.id;
    this.log = opts.log.child({ worker: this.id });
  }

  private connection(name: string): Redis {
    const c = new Redis(redisOptions(parseRedisUrl(this.opts.redisUrl), { blocking: true, connectionName: name }));
    // Errors surface through the watchdog of whoever runs us; without a listener ioredis would print them.
    c.on('error', (err) => this.log.debug({ err: err.message }, 'redis connection error'));
    this.connections.push(c);
    return c;
  }

  /** Connect (a clear RedisUnavailable if Redis does not answer), register, start taking batches. */
  async start(): Promise<void> {
    const probe = await connectRedis(this.opts.redisUrl, { connectionName: `${this.id}-hb` });
    this.connections.push(probe);
    this.heartbeat = new WorkerHeartbeat(probe, this.opts.namespace, {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      targets: this.opts.targets,
      concurrency: this.opts.concurrency,
    });
    await this.heartbeat.start((err) => this.log.warn({ err: err.message }, 'heartbeat failed'));
    for (const target of this.opts.targets) {
      const pool = new RunnerPool({
        size: this.opts.concurrency,
        runner: { allowHost: this.opts.allowHost, ...(this.opts.dataDir ? { dataDir: this.opts.dataDir } : {}) },
        log: this.log,
      });
      this.pools.set(target, pool);
      const lockDuration = this.opts.lockDurationMs ?? targetDefaults(target).lockDurationMs;
      const w = new Worker(execQueueName(target), (job, token) => this.process(target, job, token), {
        connection: this.connection(`${this.id}-${target}`),
        prefix: this.opts.namespace,
        concurrency: this.opts.concurrency,
        lockDuration,
        stalledInterval: this.opts.stalledIntervalMs,
        maxStalledCount: this.opts.maxStalledCount,
        name: this.id,
        autorun: false,
      });
      w.on('error', (err) => this.log.debug({ target, err: err.message }, 'queue error'));
      w.on('failed', (job, err) => {
        if (job) this.log.debug({ job: job.id, reason: err.message }, 'batch failed');
      });
      this.workers.set(target, w);
      void w.run().catch((err: Error) => this.log.error({ target, err: err.message }, 'worker loop ended'));
      await w.waitUntilReady();
    }
    this.log.info({ targets: this.opts.targets, concurrency: this.opts.concurrency, namespace: this.opts.namespace }, 'worker ready');
  }

  private async process(target: string, job: Job, token: string | undefined): Promise<BatchResult> {
    const raw = job.data as { campaign?: unknown; coordinator?: unknown } | undefined;
    const jlog = this.log.child({ job: job.id, campaign: raw?.campaign, coordinator: raw?.coordinator, target });
    const parsed = parseExecJobData(job.data, target);
    if (!parsed.ok) {
      jlog.error({ reason: parsed.reason }, 'refusing job');
      throw new UnrecoverableError(`${REFUSED_PREFIX} ${parsed.reason}`);
    }
    const d = parsed.value;
    const batch = job.id ?? `${d.campaign}-${d.from}`;
    this.active.set(batch, { job, token, batch });
    const startedAt = Date.now();
    const t0 = performance.now();
    jlog.debug({ cases: d.cases.length, from: d.from, attempt: job.attemptsMade + 1 }, 'batch start');
    let end: BatchEnd;
    try {
      end = await this.pools.get(target)!.run({ batch, target, caseTimeoutMs: d.caseTimeoutMs, cases: d.cases });
    } finally {
      this.active.delete(batch);
    }
    const wallMs = Math.round(performance.now() - t0);
    switch (end.kind) {
      case 'invalid': {
        const first = end.problems.slice(0, 3).map((p) => `case #${p.index} (${p.id}): ${p.issues.slice(0, 2).join('; ')}`);
        const reason = `${REFUSED_PREFIX} ${end.problems.length} of ${d.cases.length} cases are not valid cases: ${first.join(' | ')}`;
        jlog.error({ reason }, 'refusing job');
        throw new UnrecoverableError(reason);
      }
      case 'refused':
        // The machine's problem, not the batch's: give the batch back and stop serving this target.
        jlog.error({ reason: end.message }, 'the target will not run on this machine: no longer serving it');
        if (!this.refused.has(target)) {
          this.refused.add(target);
          setImmediate(() => {
            void this.workers.get(target)?.close();
            this.emit('target-refused', target, end.message);
          });
        }
        return this.giveBack(job, token, jlog, `target refused: ${end.message}`);
      case 'failed':
        if (this.closing) return this.giveBack(job, token, jlog, `stopped by shutdown (${end.message})`);
        jlog.warn({ reason: end.message, done: end.results.length }, 'batch failed');
        throw new Error(end.message);
      case 'aborted':
        return this.giveBack(job, token, jlog, `stopped by shutdown after ${end.results.length} of ${d.cases.length} cases`);
      case 'done':
        this.batchesDone++;
        jlog.debug({ wallMs, targetMs: end.targetMs }, 'batch done');
        return {
          v: PROTOCOL_VERSION,
          worker: this.id,
          target,
          campaign: d.campaign,
          from: d.from,
          to: d.to,
          startedAt,
          wallMs,
          targetMs: end.targetMs,
          results: end.results,
        };
    }
  }

  /** Return a batch to the queue (shutdown): not an attempt, not a failure. */
  private async giveBack(job: Job, token: string | undefined, jlog: Logger, why: string): Promise<never> {
    await job.moveToWait(token);
    jlog.info({ why }, 'batch returned to the queue');
    throw new WaitingError();
  }

  /** Targets this worker still serves. */
  get serving(): string[] {
    return this.opts.targets.filter((t) => !this.refused.has(t));
  }

  /** Batches running now (job ids). */
  get running(): string[] {
    return [...this.active.keys()];
  }

  /**
   * Stop at once without Redis (it is gone): kill the runners, drop the
   * connections. Running batches return to the queue by the stalled check
   * once Redis is back.
   */
  abandon(): void {
    this.closing = true;
    for (const pool of this.pools.values()) void pool.close();
    for (const c of this.connections) c.disconnect();
  }

  /**
   * Graceful stop: take no new batch, let running ones finish for
   * `shutdownGraceMs`, then return them to the queue. Idempotent.
   */
  close(): Promise<void> {
    this.closed ??= this.doClose();
    return this.closed;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    const running = this.running.length;
    if (running) this.log.info({ running, graceMs: this.opts.shutdownGraceMs }, 'shutting down: letting running batches finish');
    const grace = setTimeout(() => {
      for (const a of this.active.values()) {
        this.log.info({ job: a.batch }, 'grace over: returning the batch after its current case');
        for (const pool of this.pools.values()) pool.abort(a.batch);
      }
      // A case that ignores the abort: kill its runner (the batch still goes back).
      const hard = setTimeout(() => {
        for (const a of this.active.values()) for (const pool of this.pools.values()) pool.kill(a.batch);
      }, 10_000);
      hard.unref();
    }, this.opts.shutdownGraceMs);
    grace.unref();
    await Promise.all([...this.workers.values()].map((w) => w.close().catch((err: Error) => this.log.warn({ err: err.message }, 'closing a queue worker failed'))));
    clearTimeout(grace);
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    await this.heartbeat?.stop();
    for (const c of this.connections) c.disconnect();
    this.log.info({ batches: this.batchesDone }, 'worker stopped');
  }
}
