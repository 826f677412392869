/**
 * An Executor whose runs go through the farm: each run() queues the case as
 * a one-case batch on exec-<target> (the wire contract of
 * worker/farm/protocol.ts: an ordinary ExecJobData, so any worker serving
 * the target takes it) and resolves with the outcome the worker returns.
 * Many runs are in flight at once (the minimizer's concurrency), spread over
 * every worker of the target.
 *
 * Jobs: id `<label>-<encoded target>-<n>-<n+1>` (label: 'triage-<6 hex>',
 * never a campaign's 'seed-N', so coordinators ignore their events), campaign
 * field = label, origin 'manual'. They go to the head of the queue (LIFO):
 * a minimization waits for the batch a worker is running, not for the
 * campaign's queue. A run whose job fails, times out or is aborted resolves
 * as an infra-error (the minimizer counts it as "not shown").
 */
import { randomBytes } from 'node:crypto';
import { type Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Case, type RunOutcome, validateCase } from '../../model/index.ts';
import { type BatchResult, EXEC_JOB_NAME, type ExecJobData, PROTOCOL_VERSION, caseId, encodeTargetName, execJobId, execQueueName } from '../../worker/farm/protocol.ts';
import { targetDefaults } from '../../worker/farm/target-defaults.ts';
import type { Executor } from './executor.ts';

export interface QueueExecutorOptions {
  /** A Redis connection for the queue's commands (maxRetriesPerRequest null, as BullMQ wants for blocking); its duplicate listens for the events. */
  connection: Redis;
  /** The farm's namespace (BullMQ prefix). */
  namespace: string;
  /** The target the cases run on: its exec queue. */
  target: string;
  /** Recorded in each job as its coordinator (`<host>-<pid>-<hex>`). */
  coordinator: string;
  /** @defaultValue `triage-<6 random hex>` */
  label?: string;
  /** @defaultValue the target kind's case timeout */
  caseTimeoutMs?: number;
  /**
   * A run still unanswered after this long is an infra-error (no worker, a lost job).
   * @defaultValue 3 x caseTimeoutMs + 60 s
   */
  runTimeoutMs?: number;
  /** How often runs without an event are looked up. @defaultValue 5000 */
  pollMs?: number;
}

interface Pending {
  jobId: string;
  resolve: (o: RunOutcome) => void;
}

function parseReturn(v: unknown): BatchResult | undefined {
  let x = v;
  if (typeof x === 'string') {
    try {
      x = JSON.parse(x);
    } catch {
      return undefined;
    }
  }
  return x && typeof x === 'object' && Array.isArray((x as BatchResult).results) ? (x as BatchResult) : undefined;
}

export class QueueExecutor implements Executor {
  readonly name: string;
  readonly label: string;
  /** Runs queued so far. */
  executions = 0;
  private seq = 0;
  private readonly pending = new Map<string, Pending>();
  private poller: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly opts: QueueExecutorOptions,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly eventConnection: Redis,
  ) {
    this.name = opts.target;
    this.label = opts.label ?? `triage-${randomBytes(3).toString('hex')}`;
    events.on('completed', ({ jobId, returnvalue }) => this.settle(jobId, { returnvalue }));
    events.on('failed', ({ jobId, failedReason }) => this.settle(jobId, { failed: failedReason }));
    this.poller = setInterval(() => void this.poll(), opts.pollMs ?? 5000);
    this.poller.unref();
  }

  /** Connect the queue and its events (ready before the first job is added, so no answer is missed). */
  static async open(opts: QueueExecutorOptions): Promise<QueueExecutor> {
    encodeTargetName(opts.target);
    const queue = new Queue(execQueueName(opts.target), { connection: opts.connection, prefix: opts.namespace });
    queue.on('error', () => {});
    const eventConnection = opts.connection.duplicate();
    eventConnection.on('error', () => {});
    const events = new QueueEvents(execQueueName(opts.target), { connection: eventConnection, prefix: opts.namespace });
    events.on('error', () => {});
    await events.waitUntilReady();
    return new QueueExecutor(opts, queue, events, eventConnection);
  }

  private caseTimeoutMs(): number {
    return this.opts.caseTimeoutMs ?? targetDefaults(this.opts.target).caseTimeoutMs;
  }

  private infra(message: string): RunOutcome {
    return { kind: 'infra-error', target: this.name, message };
  }

  private settle(jobId: string, r: { returnvalue?: unknown; failed?: string }): void {
    const p = this.pending.get(jobId);
    if (!p) return;
    this.pending.delete(jobId);
    if (r.failed !== undefined) {
      p.resolve(this.infra(`run failed on the farm: ${r.failed}`));
      return;
    }
    const res = parseReturn(r.returnvalue)?.results[0];
    p.resolve(res ? res.outcome : this.infra('the worker returned no result'));
    void this.queue.remove(jobId).catch(() => undefined);
  }

  /** Runs whose events were missed (a reconnect): read the job. */
  private async poll(): Promise<void> {
    for (const { jobId } of [...this.pending.values()]) {
      try {
        const job = (await this.queue.getJob(jobId)) as Job | undefined;
        if (!job) continue;
        const st = await job.getState();
        if (st === 'completed') this.settle(jobId, { returnvalue: job.returnvalue });
        else if (st === 'failed') this.settle(jobId, { failed: job.failedReason ?? 'failed' });
      } catch {
        // Redis away for a moment: the next poll tries again
      }
    }
  }

  run(c: Case, signal?: AbortSignal): Promise<RunOutcome> {
    if (this.closed) return Promise.resolve(this.infra('the executor is closed'));
    const v = validateCase(c);
    if (!v.ok) return Promise.resolve(this.infra(`invalid case: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`));
    const n = this.seq++;
    const jobId = execJobId(this.label, this.opts.target, n, n + 1);
    const data: ExecJobData = {
      v: PROTOCOL_VERSION,
      coordinator: this.opts.coordinator,
      campaign: this.label,
      target: this.opts.target,
      from: n,
      to: n + 1,
      caseTimeoutMs: this.caseTimeoutMs(),
      cases: [{ id: caseId(v.value), index: n, origin: 'manual', case: v.value }],
    };
    this.executions++;
    return new Promise<RunOutcome>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (o: RunOutcome) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(o);
      };
      const giveUp = (why: string) => {
        if (!this.pending.delete(jobId)) return;
        void this.queue.remove(jobId).catch(() => undefined);
        done(this.infra(why));
      };
      const onAbort = () => giveUp('aborted');
      this.pending.set(jobId, { jobId, resolve: done });
      const limit = this.opts.runTimeoutMs ?? 3 * this.caseTimeoutMs() + 60_000;
      timer = setTimeout(() => giveUp(`no answer from a worker of ${this.opts.target} within ${Math.round(limit / 1000)} s`), limit);
      timer.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue
        .add(EXEC_JOB_NAME, data, { jobId, lifo: true, attempts: 2, backoff: { type: 'fixed', delay: 1000 }, removeOnComplete: { age: 3600 }, removeOnFail: { age: 3600 } })
        .catch((err: Error) => giveUp(`could not queue the run: ${err.message}`));
    });
  }

  /** Runs queued and not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Stop: unanswered runs resolve as infra-errors and their waiting jobs are removed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.poller);
    for (const [jobId, p] of [...this.pending]) {
      this.pending.delete(jobId);
      await this.queue.remove(jobId).catch(() => undefined);
      p.resolve(this.infra('the executor closed'));
    }
    await this.events.close().catch(() => undefined);
    await this.queue.close().catch(() => undefined);
    this.eventConnection.disconnect();
  }
}
