/**
 * The coordinator: runs one campaign on one or more targets through the
 * farm's queues (wire contract: worker/farm/protocol.ts; its Redis state:
 * ./campaign-state.ts; its files: ./data-dir.ts).
 *
 * Per target it keeps at most `maxInflightBatches` batches in flight (queued,
 * running, or finished but not yet counted): that is the back-pressure, so a
 * queue never holds more than maxInflightBatches x batchSize cases, whatever
 * the generator's speed. It fills the queue as results come back (QueueEvents,
 * plus a periodic reconcile that catches what events missed), counts results
 * exactly once (Lua applyResult), files findings (data directory + `triage`
 * queue), keeps new outcome classes in the corpus, and splits a batch that
 * failed for good until the case that fails is alone.
 *
 * Batches are recorded in flight BEFORE they are queued (and the target's
 * cursor moves with them), so a coordinator killed at any point resumes
 * without losing or repeating a case: a recorded batch whose job is missing
 * is regenerated (generated cases are a function of seed and index) and
 * queued again under the same job id.
 *
 * stop() pauses: the campaign stays 'running' in Redis and resumes with the
 * next coordinator started on it; workers go on with what is queued.
 */
import { EventEmitter } from 'node:events';
import { Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { type Case, type RunOutcome } from '../../model/index.ts';
import type { Logger } from '../../infra/log.ts';
import { RedisUnavailable, RedisWatchdog, connectRedis, parseRedisUrl, redisOptions } from '../../infra/redis/connection.ts';
import {
  type BatchResult, type CaseEnvelope, DEFAULT_NAMESPACE, EXEC_JOB_NAME, type ExecJobData, PROTOCOL_VERSION, REFUSED_PREFIX, TRIAGE_QUEUE,
  type TriageJobData, encodeTargetName, execJobId, execQueueName, processId, triageJobId,
} from '../../worker/farm/protocol.ts';
import { liveWorkers } from '../../worker/farm/registry.ts';
import { targetDefaults } from '../../worker/farm/target-defaults.ts';
import { type CampaignBudget, CampaignState, type CountField, type Counts, type InflightEntry, HISTORY_EVERY_MS } from './campaign-state.ts';
import { BUILTIN_GENERATOR, CaseSource, type CorpusView, type GeneratorApi, generatorNamed, seedCases } from './case-source.ts';
import { buildableFor } from './buildable.ts';
import { CorpusStore, keepKeys } from '../../corpus/store/index.ts';
import { DataDir, writeAtomic } from './data-dir.ts';
import { type RetentionPolicy, loadRetention, sweepRetention } from './retention.ts';
import { type Finding, caseFeatures, isFinding, signatureOf } from '../triage/signature.ts';
import { TriageConsumer } from './triage.ts';
import { appendFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

export interface CoordinatorOptions {
  redisUrl: string;
  log: Logger;
  targets: string[];
  budget: CampaignBudget;
  /** Resume or start campaign seed-<seed>; without it, resume the latest running campaign or start a new one. */
  seed?: number;
  /** @defaultValue './data' */
  dataDir?: string;
  /** @defaultValue 'blockfarm' */
  namespace?: string;
  /**
   * At most this many batches in flight per target (queued, running, or done
   * but not yet counted); fewer while the target's live workers have fewer
   * slots (2 per slot, at least 2).
   * @defaultValue 8
   */
  maxInflightBatches?: number;
  /** Cases per batch. @defaultValue the target kind's (worker/farm/target-defaults.ts) */
  batchSize?: number;
  /** @defaultValue the target kind's */
  caseTimeoutMs?: number;
  /** @defaultValue 0.25 */
  mutationRate?: number;
  /** 'builtin' forces the stand-in generator (tests, benchmarks). @defaultValue 'auto' */
  generator?: 'auto' | 'builtin';
  /** Run corpus/seeds first. @defaultValue true */
  seeds?: boolean;
  /**
   * Attempts of a batch (a runner that dies, a target that fails) before the coordinator splits it.
   * @defaultValue 2
   */
  attempts?: number;
  /**
   * Once the budget is spent: how long to wait for batches in flight before
   * cancelling the queued ones.
   * @defaultValue 2 x the longest case timeout of the targets, at least 60 s
   */
  drainTimeoutMs?: number;
  /** @defaultValue 1000 */
  progressEveryMs?: number;
  /** @defaultValue from <data dir>/retention.json, else the defaults */
  retention?: RetentionPolicy;
  /** @defaultValue 600000 (10 min) */
  retentionEveryMs?: number;
  /** Run the triage consumer in this process. @defaultValue true */
  triage?: boolean;
  /** Give up when Redis has been unreachable this long. @defaultValue 20000 */
  redisDownGraceMs?: number;
  /** @defaultValue processId() */
  id?: string;
}

export interface TargetProgress {
  target: string;
  counts: Counts;
  inflightBatches: number;
  /** Cases per second over the last ~10 s. */
  rate: number;
  workers: number;
  scenarios: Record<string, number>;
}

export interface ProgressSnapshot {
  campaign: string;
  seed: number;
  elapsedMs: number;
  /** Duration budget left, if any. */
  remainingMs?: number;
  /** Cases budget per target, if any. */
  casesBudget?: number;
  draining: boolean;
  targets: TargetProgress[];
  /** This coordinator process: resident memory and live JS heap, MB. */
  memory: { rssMb: number; heapUsedMb: number };
}

export interface CampaignSummary extends ProgressSnapshot {
  resumed: boolean;
  /** false when stopped early (paused): the campaign resumes next time. */
  finished: boolean;
  generator: string;
  coordinator: string;
  dataDir: string;
  /** Distinct signatures found by this campaign, and the first few. */
  signatures: number;
  someSignatures: string[];
  /** Batches abandoned still running when the drain timed out. */
  abandonedBatches: number;
  /** Milliseconds this run of the coordinator spent making cases (the generator's share of its time). */
  generatorMs: number;
}

export interface BatchEvent {
  target: string;
  jobId: string;
  worker: string;
  /** Case ids and indexes counted from this batch. */
  results: Array<{ id: string; index: number; kind: string }>;
}

export interface CoordinatorEvents {
  progress: [ProgressSnapshot];
  enqueued: [{ target: string; jobId: string; cases: Array<Pick<CaseEnvelope, 'id' | 'index' | 'origin' | 'parent'>> }];
  batch: [BatchEvent];
  finding: [TriageJobData];
  refused: [{ target: string; jobId: string; reason: string; cases: number }];
  warning: [string];
}

/**
 * V8 heap settings for a long-running coordinator (the systemd unit and the
 * compose file set them in NODE_OPTIONS): it keeps no per-case state (its live
 * heap stays around 25-40 MB), and with V8's defaults the heap would still
 * grow lazily by tens of MB; these keep its RSS flat.
 */
export const COORDINATOR_NODE_OPTIONS = '--max-old-space-size=128 --max-semi-space-size=4';

/** A BatchResult as far as counting needs (the worker's return value, from an event or the job). */
function isBatchResult(v: unknown): v is BatchResult {
  return typeof v === 'object' && v !== null && Array.isArray((v as BatchResult).results) && typeof (v as BatchResult).worker === 'string';
}

const RATE_WINDOW_MS = 10_000;
const RECONCILE_MS = 2_000;
const WORKERS_CHECK_MS = 5_000;
const CORPUS_CACHE = 256;
const INFRA_ERRORS_KEPT = 200;

export class Coordinator extends EventEmitter<CoordinatorEvents> {
  readonly id: string;
  readonly opts: CoordinatorOptions & Required<Pick<CoordinatorOptions, 'namespace' | 'maxInflightBatches' | 'mutationRate' | 'seeds' | 'attempts' | 'progressEveryMs' | 'retentionEveryMs' | 'triage' | 'redisDownGraceMs' | 'generator'>>;
  readonly dataDir: DataDir;
  private readonly log: Logger;
  private redis!: Redis;
  private readonly connections: Redis[] = [];
  private watchdog: RedisWatchdog | undefined;
  private state!: CampaignState;
  private readonly sources = new Map<string, CaseSource>();
  private corpus!: CorpusStore;
  private generator!: GeneratorApi;
  private readonly queues = new Map<string, Queue>();
  private triageQueue!: Queue;
  private readonly events: QueueEvents[] = [];
  private triage: TriageConsumer | undefined;
  private inflight = new Map<string, InflightEntry>();
  private cursors = new Map<string, number>();
  /** Jobs with news (an event or a reconcile): job id -> target, and the return value when the event carried it. */
  private readonly pending = new Map<string, { target: string; returnvalue?: unknown }>();
  /**
   * The cases of batches in flight that this process queued (bounded by the
   * back-pressure: maxInflightBatches x batchSize per target), so a result
   * is counted from the completion event alone, without reading the job back.
   * After a restart they are read back from the job.
   */
  private readonly batchCases = new Map<string, CaseEnvelope[]>();
  private readonly processing = new Set<string>();
  private readonly enqueuing = new Set<string>();
  private readonly rateSamples = new Map<string, Array<[number, number]>>();
  private readonly workersSeen = new Map<string, number>();
  private readonly slotsSeen = new Map<string, number>();
  private readonly noWorkerSince = new Map<string, number>();
  private readonly corpusCache = new Map<string, Case>();
  private readonly infraErrorsSeen = new Map<string, number>();
  private corpusSizeCache: { at: number; n: number } = { at: 0, n: 0 };
  private stopRequested = false;
  private fatal: Error | undefined;
  private wake: (() => void) | undefined;
  private runStart = 0;
  private lastHistoryAt = 0;
  private elapsedBase = 0;
  private drainDeadline: number | undefined;
  private abandoned = 0;
  private retention!: RetentionPolicy;
  private rejectFatal: ((err: Error) => void) | undefined;
  /** Time this process spent making cases (generation, mutation, classification). */
  private generatorMs = 0;
  private readonly fatalPromise = new Promise<never>((_, reject) => {
    this.rejectFatal = reject;
  });

  constructor(opts: CoordinatorOptions) {
    super();
    if (!opts.targets.length) throw new Error('a campaign needs at least one target');
    this.opts = {
      namespace: DEFAULT_NAMESPACE,
      maxInflightBatches: 8,
      mutationRate: 0.25,
      seeds: true,
      attempts: 2,
      progressEveryMs: 1000,
      retentionEveryMs: 600_000,
      triage: true,
      redisDownGraceMs: 20_000,
      generator: 'auto',
      ...opts,
    };
    if (!Number.isInteger(this.opts.maxInflightBatches) || this.opts.maxInflightBatches < 1) throw new Error('maxInflightBatches must be a positive integer');
    if (this.opts.batchSize !== undefined && (!Number.isInteger(this.opts.batchSize) || this.opts.batchSize < 1)) throw new Error('batchSize must be a positive integer');
    for (const t of opts.targets) encodeTargetName(t);
    this.id = opts.id ?? processId();
    this.dataDir = new DataDir(opts.dataDir ?? 'data');
    this.log = opts.log.child({ coordinator: this.id });
    this.fatalPromise.catch(() => {});
  }

  // ---------------------------------------------------------------- helpers

  private connection(name: string): Redis {
    const c = new Redis(redisOptions(parseRedisUrl(this.opts.redisUrl), { blocking: true, connectionName: `${this.id}-${name}` }));
    c.on('error', (err) => this.log.debug({ err: err.message }, 'redis connection error'));
    this.connections.push(c);
    return c;
  }

  private batchSize(target: string): number {
    return this.opts.batchSize ?? targetDefaults(target).batchSize;
  }

  private caseTimeout(target: string): number {
    return this.opts.caseTimeoutMs ?? targetDefaults(target).caseTimeoutMs;
  }

  private drainTimeout(): number {
    return this.opts.drainTimeoutMs ?? Math.max(60_000, 2 * Math.max(...this.opts.targets.map((t) => this.caseTimeout(t))));
  }

  elapsedMs(): number {
    return this.elapsedBase + (this.runStart ? Date.now() - this.runStart : 0);
  }

  private budgetSpent(target: string): boolean {
    const b = this.state.meta.budget;
    if (this.stopRequested) return true;
    if (b.cases !== undefined && (this.cursors.get(target) ?? 0) >= b.cases) return true;
    if (b.durationMs !== undefined && this.elapsedMs() >= b.durationMs) return true;
    return false;
  }

  /**
   * Batches allowed in flight for a target now: twice the batch slots of its
   * live workers (one running, one waiting per slot), at least 2, at most
   * maxInflightBatches. A slow target (a VM) thus queues little more than it
   * can run, and the drain at the end of a timed campaign stays short.
   */
  private depthFor(target: string): number {
    const slots = this.slotsSeen.get(target) ?? 0;
    return Math.min(this.opts.maxInflightBatches, Math.max(2, 2 * slots));
  }

  private inflightOf(target: string): number {
    let n = 0;
    for (const e of this.inflight.values()) if (e.target === target) n++;
    return n;
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Stop generating and return (paused, resumable). Safe to call from a signal handler. */
  stop(): void {
    this.stopRequested = true;
    this.poke();
  }

  // ---------------------------------------------------------------- corpus

  /**
   * Mutation picks from the corpus index in Redis (<ns>:corpus, hashes of the
   * corpus store's cases), so every coordinator of a namespace draws from the
   * same corpus; the cases themselves are files (corpus/store).
   */
  private corpusView(): CorpusView {
    const key = `${this.opts.namespace}:corpus`;
    return {
      size: async () => {
        const now = Date.now();
        if (now - this.corpusSizeCache.at > 1000) this.corpusSizeCache = { at: now, n: await this.redis.zcard(key) };
        return this.corpusSizeCache.n;
      },
      at: async (k) => {
        const [id] = await this.redis.zrange(key, String(k), String(k));
        if (!id) return undefined;
        const cached = this.corpusCache.get(id);
        if (cached) return { id, case: cached };
        let c: Case;
        try {
          c = await this.corpus.load(id);
        } catch {
          // Swept by retention, damaged, or no longer valid under the current schema: drop it from the index.
          await this.redis.zrem(key, id);
          return undefined;
        }
        if (this.corpusCache.size >= CORPUS_CACHE) this.corpusCache.delete(this.corpusCache.keys().next().value!);
        this.corpusCache.set(id, c);
        return { id, case: c };
      },
    };
  }

  /** A data directory whose corpus Redis does not know (a new Redis, a wiped one): index it again. */
  private async indexCorpus(): Promise<void> {
    const key = `${this.opts.namespace}:corpus`;
    if ((await this.redis.zcard(key)) > 0 || this.corpus.size === 0) return;
    const entries = [...this.corpus.entries()];
    for (let i = 0; i < entries.length; i += 1000) {
      const args = entries.slice(i, i + 1000).flatMap((e) => [String(Date.parse(e.addedAt) || Date.now()), e.hash]);
      await this.redis.zadd(key, ...args);
    }
    this.log.info({ cases: entries.length }, 'corpus indexed from the data directory');
  }

  /**
   * The corpus keeps a case that showed something new (corpus/store/policy.ts):
   * a new signature, or a new outcome class of the target. The "features" of
   * an outcome class are structural here (stack shape, op kinds, threads,
   * scenarios); the keys seen live in the Redis set <ns>:corpus-keys.
   */
  private async keepNew(target: string, candidates: Array<{ env: CaseEnvelope; outcome: RunOutcome }>): Promise<number> {
    if (!candidates.length) return 0;
    const perCase = candidates.map(({ env, outcome }) =>
      keepKeys({
        target,
        outcome: outcome.kind,
        ...(isFinding(outcome) ? { signature: signatureOf(outcome, env.case as Case).id } : {}),
        features: caseFeatures(env.case as Case, env.scenarios),
      }),
    );
    const all = [...new Set(perCase.flat().map((k) => k.key))];
    if (!all.length) return 0;
    const setKey = `${this.opts.namespace}:corpus-keys`;
    const seenList = (await this.redis.smismember(setKey, ...all)) as number[];
    const seen = new Set(all.filter((_, i) => seenList[i]));
    let kept = 0;
    for (let i = 0; i < candidates.length; i++) {
      const fresh = perCase[i]!.filter((k) => !seen.has(k.key));
      if (!fresh.length) continue;
      const { env, outcome } = candidates[i]!;
      const c = env.case as Case;
      const { hash } = await this.corpus.add(c, {
        reason: fresh[0]!.reason,
        target,
        outcome: outcome.kind,
        ...(isFinding(outcome) ? { signature: signatureOf(outcome, c).id } : {}),
        ...(env.scenarios ? { scenarios: env.scenarios } : {}),
      });
      const keys = fresh.map((k) => k.key);
      for (const k of keys) seen.add(k);
      await this.redis.multi().zadd(`${this.opts.namespace}:corpus`, Date.now(), hash).sadd(setKey, ...keys).exec();
      kept++;
    }
    return kept;
  }

  // ---------------------------------------------------------------- enqueue

  private jobOptions(jobId: string) {
    return {
      jobId,
      attempts: this.opts.attempts,
      backoff: { type: 'fixed' as const, delay: 1000 },
      // Completed jobs stay until their result is counted (then the coordinator removes them).
      removeOnComplete: false,
      // Failed jobs stay for people to read (refusals, runner deaths), a bounded number.
      removeOnFail: { count: 1000, age: 7 * 86_400 },
    };
  }

  private async addJob(target: string, jobId: string, entry: InflightEntry, cases: CaseEnvelope[]): Promise<void> {
    this.batchCases.set(jobId, cases);
    const data: ExecJobData = {
      v: PROTOCOL_VERSION,
      coordinator: this.id,
      campaign: this.state.id,
      target,
      from: entry.from,
      to: entry.to,
      caseTimeoutMs: this.caseTimeout(target),
      cases,
    };
    await this.queues.get(target)!.add(EXEC_JOB_NAME, data, this.jobOptions(jobId));
  }

  private async enqueueNext(target: string): Promise<void> {
    const from = this.cursors.get(target) ?? 0;
    const casesBudget = this.state.meta.budget.cases;
    const to = Math.min(from + this.batchSize(target), casesBudget ?? Number.MAX_SAFE_INTEGER);
    if (to <= from) return;
    const g0 = performance.now();
    const cases = await this.sources.get(target)!.batch(from, to);
    this.generatorMs += performance.now() - g0;
    const jobId = execJobId(this.state.id, target, from, to);
    const entry = { target, from, to };
    // Record first (with the cursor), then queue: a crash in between leaves a recorded batch without a job, which reconcile re-queues.
    this.enqueuing.add(jobId);
    try {
      await this.state.recordEnqueued(jobId, entry, to);
      this.inflight.set(jobId, entry);
      this.cursors.set(target, to);
      await this.addJob(target, jobId, entry, cases);
    } finally {
      this.enqueuing.delete(jobId);
    }
    this.emit('enqueued', { target, jobId, cases: cases.map((c) => ({ id: c.id, index: c.index, origin: c.origin, ...(c.parent ? { parent: c.parent } : {}) })) });
  }

  private async fill(): Promise<void> {
    for (const target of this.opts.targets) {
      while (!this.fatal && !this.budgetSpent(target) && this.inflightOf(target) < this.depthFor(target)) {
        await this.enqueueNext(target);
        // Let results in between batches of a slow generator.
        if (this.pending.size) break;
      }
    }
  }

  // ---------------------------------------------------------------- results

  private onJobEvent(target: string, jobId: string, returnvalue?: unknown): void {
    if (!jobId.startsWith(`${this.state.id}-`)) return;
    this.pending.set(jobId, { target, ...(returnvalue !== undefined ? { returnvalue } : {}) });
    this.poke();
  }

  private async processPending(): Promise<void> {
    const batch = [...this.pending].filter(([id]) => !this.enqueuing.has(id)).slice(0, 8);
    for (const [id] of batch) this.pending.delete(id);
    await Promise.all(batch.map(([id, p]) => this.processJob(p.target, id, p.returnvalue)));
  }

  private async processJob(target: string, jobId: string, returnvalue?: unknown): Promise<void> {
    if (this.processing.has(jobId) || this.enqueuing.has(jobId)) return;
    this.processing.add(jobId);
    try {
      if (!this.inflight.has(jobId)) return;
      const queue = this.queues.get(target)!;
      const cases = this.batchCases.get(jobId);
      // The fast path: a completion event with its result, for a batch this process queued.
      if (cases && isBatchResult(returnvalue)) {
        await this.applyCompleted(target, jobId, cases, returnvalue);
        return;
      }
      const job = (await queue.getJob(jobId)) as Job | undefined;
      if (!job) return;
      const st = await job.getState();
      if (st === 'completed') await this.applyCompleted(target, jobId, (job.data as ExecJobData).cases, job.returnvalue as BatchResult | null);
      else if (st === 'failed') await this.applyFailed(target, job);
    } catch (err) {
      this.log.warn({ job: jobId, err: (err as Error).message }, 'processing a result failed; will retry');
      this.pending.set(jobId, { target });
    } finally {
      this.processing.delete(jobId);
    }
  }

  private async fileFinding(target: string, jobId: string, env: CaseEnvelope, outcome: Finding, worker: string): Promise<void> {
    const sig = signatureOf(outcome, env.case as Case).id;
    const scenarios = env.scenarios ?? [];
    let logFile: string | undefined;
    if (outcome.kind !== 'divergence' && outcome.log) logFile = await this.dataDir.writeLog(this.state.id, target, env.id, outcome.log);
    const record = {
      campaign: this.state.id,
      coordinator: this.id,
      target,
      worker,
      execJob: jobId,
      caseId: env.id,
      index: env.index,
      origin: env.origin,
      ...(env.parent ? { parent: env.parent } : {}),
      scenarios,
      signature: sig,
      outcome: logFile && outcome.kind !== 'divergence' ? { ...outcome, log: `(see ${logFile})` } : outcome,
      case: env.case,
    };
    await this.dataDir.writeFinding(this.state.id, target, env.id, record);
    const triage: TriageJobData = {
      v: PROTOCOL_VERSION,
      coordinator: this.id,
      campaign: this.state.id,
      target,
      worker,
      execJob: jobId,
      caseId: env.id,
      signature: sig,
      scenarios,
      outcome,
      case: env.case,
    };
    await this.triageQueue.add(outcome.kind, triage, {
      jobId: triageJobId(this.state.id, target, env.id),
      attempts: 3,
      backoff: { type: 'fixed', delay: 2000 },
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 1000 },
    });
    await this.redis.sadd(`${this.opts.namespace}:campaign:${this.state.id}:sigs`, sig);
    this.emit('finding', triage);
  }

  private async applyCompleted(target: string, jobId: string, cases: CaseEnvelope[], res: BatchResult | null): Promise<void> {
    const counts: Partial<Record<CountField, number>> = { batches: 1 };
    const scenarios: Record<string, number> = {};
    const add = (f: CountField, n = 1) => (counts[f] = (counts[f] ?? 0) + n);
    const byIndex = new Map(cases.map((e) => [e.index, e]));
    const results = res?.results ?? [];
    const candidates: Array<{ env: CaseEnvelope; outcome: RunOutcome }> = [];
    const seen = new Set<number>();
    for (const r of results) {
      const env = byIndex.get(r.index);
      if (!env || env.id !== r.id || seen.has(r.index)) continue;
      seen.add(r.index);
      add('executed');
      add(r.outcome.kind === 'infra-error' ? 'infraError' : r.outcome.kind);
      if (r.stackReused) add('stackReused');
      for (const s of env.scenarios?.length ? env.scenarios : ['none']) scenarios[s] = (scenarios[s] ?? 0) + 1;
      if (isFinding(r.outcome)) await this.fileFinding(target, jobId, env, r.outcome, res?.worker ?? '?');
      if (r.outcome.kind === 'infra-error') await this.noteInfraError(target, jobId, env, r.outcome.message, res?.worker ?? '?');
      if (r.outcome.kind !== 'infra-error' && r.outcome.kind !== 'unsupported') candidates.push({ env, outcome: r.outcome });
    }
    const missing = cases.length - seen.size;
    if (missing) {
      add('lost', missing);
      this.log.error({ job: jobId, missing }, 'a completed batch lacks results for some of its cases');
    }
    add('targetMs', Math.round(res?.targetMs ?? 0));
    add('wallMs', Math.round(res?.wallMs ?? 0));
    await this.keepNew(target, candidates);
    const applied = await this.state.applyResult(jobId, target, counts, scenarios);
    this.forget(jobId);
    await this.queues.get(target)!.remove(jobId).catch(() => {});
    if (!applied) return;
    this.emit('batch', {
      target,
      jobId,
      worker: res?.worker ?? '?',
      results: results.map((r) => ({ id: r.id, index: r.index, kind: r.outcome.kind })),
    });
  }

  /**
   * An infrastructure error is never a finding, but people need its reason:
   * a warning and a line in <data dir>/campaigns/<campaign>/infra-errors.jsonl
   * (the first INFRA_ERRORS_KEPT per target and run, so a broken target cannot fill the disk).
   */
  private async noteInfraError(target: string, jobId: string, env: CaseEnvelope, message: string, worker: string): Promise<void> {
    const n = (this.infraErrorsSeen.get(target) ?? 0) + 1;
    this.infraErrorsSeen.set(target, n);
    if (n > INFRA_ERRORS_KEPT) return;
    this.log.warn({ target, case: env.id, job: jobId, worker, reason: message }, 'infrastructure error (not a finding)');
    const line = JSON.stringify({ at: new Date().toISOString(), campaign: this.state.id, target, worker, execJob: jobId, caseId: env.id, index: env.index, message });
    await appendFile(join(this.dataDir.campaignDir(this.state.id), 'infra-errors.jsonl'), `${line}\n`);
  }

  /** A batch is done with: no longer in flight here. */
  private forget(jobId: string): void {
    this.inflight.delete(jobId);
    this.batchCases.delete(jobId);
  }

  private async applyFailed(target: string, job: Job): Promise<void> {
    const data = job.data as ExecJobData;
    const reason = job.failedReason ?? 'unknown failure';
    const n = data.cases.length;
    if (reason.startsWith(REFUSED_PREFIX)) {
      this.log.error({ job: job.id, reason, cases: n }, 'a worker refused a batch of this campaign');
      await writeAtomic(join(this.dataDir.campaignDir(this.state.id), 'refused', `${job.id}.json`), `${JSON.stringify({ job: job.id, reason, data }, null, 2)}\n`);
      if (await this.state.applyResult(job.id!, target, { refused: n }, {})) this.emit('refused', { target, jobId: job.id!, reason, cases: n });
      this.forget(job.id!);
      return;
    }
    if (n > 1) {
      const mid = data.from + Math.ceil(n / 2);
      const halves: Array<[string, InflightEntry, CaseEnvelope[]]> = [
        [execJobId(this.state.id, target, data.from, mid), { target, from: data.from, to: mid }, data.cases.slice(0, mid - data.from)],
        [execJobId(this.state.id, target, mid, data.to), { target, from: mid, to: data.to }, data.cases.slice(mid - data.from)],
      ];
      this.log.warn({ job: job.id, reason, attempts: job.attemptsMade }, 'batch failed for good: splitting it to isolate the case');
      for (const [id] of halves) this.enqueuing.add(id);
      try {
        await this.state.replaceInflight(job.id!, halves.map(([id, e]) => [id, e]));
        this.forget(job.id!);
        for (const [id, e, cases] of halves) {
          this.inflight.set(id, e);
          await this.addJob(target, id, e, cases);
        }
      } finally {
        for (const [id] of halves) this.enqueuing.delete(id);
      }
      return;
    }
    const env = data.cases[0]!;
    this.log.error({ job: job.id, case: env.id, reason }, 'a case fails its batch every time (runner death or target failure)');
    await this.dataDir.writeFinding(this.state.id, target, `${env.id}.failed`, {
      campaign: this.state.id,
      target,
      execJob: job.id,
      caseId: env.id,
      index: env.index,
      failure: reason,
      note: 'this case made its runner or target fail on every attempt (an infrastructure failure, not a verdict)',
      case: env.case,
    });
    await this.state.applyResult(job.id!, target, { failed: 1 }, {});
    this.forget(job.id!);
  }

  /** Catch what events missed: batches finished without an event, batches recorded but never queued. */
  private async reconcile(): Promise<void> {
    for (const [jobId, e] of [...this.inflight]) {
      if (this.enqueuing.has(jobId) || this.processing.has(jobId)) continue;
      const queue = this.queues.get(e.target);
      if (!queue) continue;
      const st = await queue.getJobState(jobId);
      if (st === 'completed' || st === 'failed') {
        if (!this.pending.has(jobId)) this.pending.set(jobId, { target: e.target });
      }
      else if (st === 'unknown') {
        this.log.warn({ job: jobId }, 'a batch in flight has no job (the coordinator stopped between recording and queueing it): queueing it again');
        this.enqueuing.add(jobId);
        try {
          await this.addJob(e.target, jobId, e, await this.sources.get(e.target)!.batch(e.from, e.to));
        } finally {
          this.enqueuing.delete(jobId);
        }
      }
    }
  }

  /** The budget is spent and the drain timed out: cancel queued batches; abandon running ones. */
  private async cancelRemaining(): Promise<void> {
    for (const [jobId, e] of [...this.inflight]) {
      const job = (await this.queues.get(e.target)!.getJob(jobId)) as Job | undefined;
      const st = job ? await job.getState() : 'unknown';
      if (st === 'completed' || st === 'failed') {
        await this.processJob(e.target, jobId);
        continue;
      }
      if (st === 'active') {
        this.abandoned++;
        continue;
      }
      try {
        await job?.remove();
      } catch {
        this.abandoned++;
        continue;
      }
      await this.state.applyResult(jobId, e.target, { cancelled: e.to - e.from }, {});
      this.forget(jobId);
    }
    if (this.abandoned) this.emit('warning', `${this.abandoned} batch(es) still running when the drain timed out were abandoned; their results are not counted`);
  }

  /** At the end of a campaign: let the triage consumer file what is queued (bounded wait), so the reports are there. */
  private async drainTriage(): Promise<void> {
    if (!this.triage) return;
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      const n = await this.triageQueue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      if (Object.values(n).every((x) => x === 0)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    this.log.warn('triage still has findings queued; the next coordinator on this namespace files them');
  }

  // ---------------------------------------------------------------- progress

  private async checkWorkers(): Promise<void> {
    const workers = await liveWorkers(this.redis, this.opts.namespace);
    const now = Date.now();
    for (const t of this.opts.targets) {
      const serving = workers.filter((w) => w.targets.includes(t));
      const n = serving.length;
      this.workersSeen.set(t, n);
      this.slotsSeen.set(t, serving.reduce((s, w) => s + w.concurrency, 0));
      if (n > 0) {
        this.noWorkerSince.delete(t);
        continue;
      }
      const since = this.noWorkerSince.get(t) ?? now;
      this.noWorkerSince.set(t, since);
      if (now - since >= 30_000 && (now - since) % 60_000 < WORKERS_CHECK_MS) {
        const msg = `no live worker serves target ${t} (start one: blockfarm worker --redis URL --target ${t})`;
        this.log.warn(msg);
        this.emit('warning', msg);
      }
    }
  }

  private async snapshot(): Promise<ProgressSnapshot> {
    const now = Date.now();
    const targets: TargetProgress[] = [];
    for (const t of this.opts.targets) {
      const counts = await this.state.counts(t);
      const samples = this.rateSamples.get(t) ?? [];
      samples.push([now, counts.executed]);
      while (samples.length > 2 && now - samples[0]![0] > RATE_WINDOW_MS) samples.shift();
      this.rateSamples.set(t, samples);
      const [t0, e0] = samples[0]!;
      const rate = now > t0 ? ((counts.executed - e0) * 1000) / (now - t0) : 0;
      counts.rate = rate;
      targets.push({ target: t, counts, inflightBatches: this.inflightOf(t), rate, workers: this.workersSeen.get(t) ?? 0, scenarios: await this.state.scenarios(t) });
    }
    const b = this.state.meta.budget;
    const elapsedMs = this.elapsedMs();
    return {
      campaign: this.state.id,
      seed: this.state.meta.seed,
      elapsedMs,
      ...(b.durationMs !== undefined ? { remainingMs: Math.max(0, b.durationMs - elapsedMs) } : {}),
      ...(b.cases !== undefined ? { casesBudget: b.cases } : {}),
      draining: this.drainDeadline !== undefined,
      targets,
      memory: (() => {
        const m = process.memoryUsage();
        return { rssMb: Math.round(m.rss / 1048576), heapUsedMb: Math.round(m.heapUsed / 1048576) };
      })(),
    };
  }

  private async progress(final = false): Promise<ProgressSnapshot> {
    const snap = await this.snapshot();
    await this.state.saveProgress(snap.elapsedMs, new Map(snap.targets.map((t) => [t.target, t.rate])));
    const now = Date.now();
    if (final || now - this.lastHistoryAt >= HISTORY_EVERY_MS) {
      // The counts over time live in Redis, so a dashboard opened mid-campaign (or after it) draws the whole run.
      this.lastHistoryAt = now;
      const targets = Object.fromEntries(snap.targets.map((t) => [t.target, { executed: t.counts.executed, divergence: t.counts.divergence, crash: t.counts.crash, hang: t.counts.hang }]));
      await this.state.appendHistory({ at: now, targets });
    }
    this.emit('progress', snap);
    return snap;
  }

  private async retentionSweep(): Promise<void> {
    try {
      const results = await sweepRetention(this.dataDir.root, this.retention);
      for (const r of results) {
        if (!r.removed.length) continue;
        this.log.info({ category: r.category, removed: r.removed.length, freedBytes: r.freedBytes }, 'retention: removed old entries');
        if (r.category === 'corpus') {
          const ids = r.removed.map((p) => basename(p, '.json')).filter((id) => /^[0-9a-f]{64}$/.test(id));
          for (const id of ids) this.corpusCache.delete(id);
          if (ids.length) await this.redis.zrem(`${this.opts.namespace}:corpus`, ...ids);
        }
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'retention sweep failed');
    }
  }

  // ---------------------------------------------------------------- run

  /** Stop at once with this error (Redis lost, lease lost): run() rejects even if the loop waits on Redis. */
  private fail(err: Error): void {
    if (this.fatal) return;
    this.fatal = err;
    this.rejectFatal?.(err);
    this.poke();
  }

  /** The campaign loop; true when the campaign finished, false when stopped (paused). */
  private async loop(): Promise<boolean> {
    let lastProgress = 0;
    let lastReconcile = Date.now();
    let lastWorkers = Date.now();
    let lastRetention = Date.now();
    for (;;) {
      if (this.fatal) throw this.fatal;
      try {
        await this.processPending();
        if (this.stopRequested) return false;
        await this.fill();
        const now = Date.now();
        const spent = this.opts.targets.every((t) => this.budgetSpent(t));
        if (spent && this.inflight.size === 0 && this.pending.size === 0) return true;
        if (spent) {
          this.drainDeadline ??= now + this.drainTimeout();
          if (now > this.drainDeadline) {
            await this.cancelRemaining();
            return true;
          }
        }
        if (now - lastReconcile >= RECONCILE_MS) {
          lastReconcile = now;
          await this.reconcile();
        }
        if (now - lastWorkers >= WORKERS_CHECK_MS) {
          lastWorkers = now;
          await this.checkWorkers();
        }
        if (now - lastProgress >= this.opts.progressEveryMs) {
          lastProgress = now;
          await this.progress();
        }
        if (now - lastRetention >= this.opts.retentionEveryMs) {
          lastRetention = now;
          void this.retentionSweep();
        }
        if (!this.pending.size) await this.sleep(Math.min(200, this.opts.progressEveryMs));
      } catch (err) {
        if (this.fatal) throw this.fatal;
        // A Redis hiccup (a command that failed while reconnecting): wait and go on; the watchdog decides when it is fatal.
        this.log.warn({ err: (err as Error).message }, 'campaign loop: retrying after an error');
        await this.sleep(1000);
      }
    }
  }


  /** Run (or resume) the campaign until its budget is spent, stop() is called or Redis is lost. */
  async run(): Promise<CampaignSummary> {
    this.redis = await connectRedis(this.opts.redisUrl, { connectionName: `${this.id}-main` });
    this.connections.push(this.redis);
    this.redis.on('error', () => {});
    this.watchdog = new RedisWatchdog(this.redis, this.opts.redisUrl, this.opts.redisDownGraceMs, (err) => this.fail(err));
    let leaseTimer: NodeJS.Timeout | undefined;
    try {
      // Redis lost at any point (even while queues are still connecting) ends the run at once.
      const main = this.runConnected((t) => (leaseTimer = t));
      main.catch(() => {});
      return await Promise.race([main, this.fatalPromise]);
    } catch (err) {
      // An error while Redis is away (a command failed at set-up or at the end) is Redis being away: wait for the watchdog's verdict.
      if (!this.fatal && this.redis.status !== 'ready')
        await Promise.race([this.fatalPromise.catch(() => {}), new Promise((r) => setTimeout(r, this.opts.redisDownGraceMs + 1500))]);
      throw this.fatal ?? err;
    } finally {
      clearInterval(leaseTimer);
      await this.shutdown();
    }
  }

  private async runConnected(onLeaseTimer: (t: NodeJS.Timeout) => void): Promise<CampaignSummary> {
    const ns = this.opts.namespace;
    this.retention = this.opts.retention ?? (await loadRetention(this.dataDir.root)).policy;
    this.generator = generatorNamed(this.opts.generator);
    this.corpus = await CorpusStore.open(this.dataDir.corpusDir);
    const { state, resumed } = await CampaignState.open(this.redis, ns, {
      ...(this.opts.seed !== undefined ? { seed: this.opts.seed } : {}),
      targets: this.opts.targets,
      budget: this.opts.budget,
      coordinator: this.id,
      generator: this.generator.name,
    });
    this.state = state;
    this.log.info(
      { campaign: state.id, seed: state.meta.seed, resumed, targets: this.opts.targets, budget: state.meta.budget, generator: this.generator.name, dataDir: this.dataDir.root },
      resumed ? 'resuming campaign' : 'starting campaign',
    );
    await state.acquireLease(this.id);
    const leaseTimer = setInterval(() => {
      void state.renewLease(this.id).then(
        (ok) => {
          if (!ok) this.fail(new Error(`another coordinator took over campaign ${state.id}`));
        },
        () => {},
      );
    }, 3000);
    leaseTimer.unref();
    onLeaseTimer(leaseTimer);
    {
      await writeAtomic(join(this.dataDir.campaignDir(state.id), 'campaign.json'), `${JSON.stringify({ ...state.meta, namespace: ns, dataDir: this.dataDir.root }, null, 2)}\n`);
      const qconn = this.connection('queues');
      for (const t of this.opts.targets) {
        const name = execQueueName(t);
        const q = new Queue(name, { connection: qconn, prefix: ns, streams: { events: { maxLen: 2000 } } });
        q.on('error', (err) => this.log.debug({ err: (err as Error).message }, 'queue error'));
        this.queues.set(t, q);
        const qe = new QueueEvents(name, { connection: this.connection(`events-${encodeTargetName(t)}`), prefix: ns });
        qe.on('completed', ({ jobId, returnvalue }) => this.onJobEvent(t, jobId, returnvalue));
        qe.on('failed', ({ jobId }) => this.onJobEvent(t, jobId));
        qe.on('error', (err) => this.log.debug({ err: (err as Error).message }, 'queue events error'));
        this.events.push(qe);
        await qe.waitUntilReady();
      }
      this.triageQueue = new Queue(TRIAGE_QUEUE, { connection: qconn, prefix: ns });
      this.triageQueue.on('error', (err) => this.log.debug({ err: (err as Error).message }, 'triage queue error'));
      if (this.opts.triage) {
        this.triage = new TriageConsumer({ connection: this.connection('triage'), redis: this.redis, namespace: ns, dataDir: this.dataDir, log: this.log, coordinatorId: this.id });
        await this.triage.start();
      }
      this.inflight = await state.inflight();
      this.cursors = await state.cursors();
      const seeds = this.opts.seeds ? seedCases() : undefined;
      for (const t of this.opts.targets) {
        // Only cases the target can build go to it: the kind's supports, narrowed to its kernel where this machine knows it.
        const buildable = this.generator === BUILTIN_GENERATOR ? undefined : await buildableFor(t);
        if (buildable?.dropped.length)
          this.log.info({ target: t, basis: buildable.basis, dropped: buildable.dropped }, `${t}: generating no ${buildable.dropped.map((d) => d.kind).join(', ')} layers (${buildable.dropped[0]!.why})`);
        this.sources.set(
          t,
          new CaseSource({
            seed: state.meta.seed,
            target: t,
            generator: this.generator,
            mutationRate: this.opts.mutationRate,
            corpus: this.corpusView(),
            ...(buildable ? { supports: buildable.supports } : {}),
            ...(seeds ? { seeds } : {}),
          }),
        );
      }
      await this.indexCorpus();
      this.elapsedBase = state.meta.elapsedMs;
      this.runStart = Date.now();
      if (resumed) this.log.info({ inflight: this.inflight.size, cursors: Object.fromEntries(this.cursors), elapsedMs: this.elapsedBase }, 'resumed state');
      await this.reconcile();
      void this.retentionSweep();
      await this.checkWorkers();
      const loop = this.loop();
      loop.catch(() => {});
      const finished = await Promise.race([loop, this.fatalPromise]);
      if (finished) await this.drainTriage();
      // The summary names the workers serving each target now, not at the last periodic check.
      await this.checkWorkers().catch(() => {});
      const snap = await this.progress(true);
      if (finished) {
        await state.finish(snap.elapsedMs);
        await this.retentionSweep();
      }
      const sigKey = `${ns}:campaign:${state.id}:sigs`;
      const summary: CampaignSummary = {
        ...snap,
        resumed,
        finished,
        generator: this.generator.name,
        coordinator: this.id,
        dataDir: this.dataDir.root,
        signatures: await this.redis.scard(sigKey),
        someSignatures: (await this.redis.srandmember(sigKey, 10)) as string[],
        abandonedBatches: this.abandoned,
        generatorMs: Math.round(this.generatorMs),
      };
      await writeAtomic(join(this.dataDir.campaignDir(state.id), 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
      this.log.info({ campaign: state.id, finished, elapsedMs: snap.elapsedMs }, finished ? 'campaign finished' : 'campaign paused (resumes on the next start)');
      return summary;
    }
  }

  private async shutdown(): Promise<void> {
    this.watchdog?.stop();
    const lost = this.fatal instanceof RedisUnavailable;
    if (!lost) {
      await this.state?.releaseLease(this.id).catch(() => {});
      await this.triage?.close().catch(() => {});
      for (const qe of this.events) await qe.close().catch(() => {});
      for (const q of this.queues.values()) await q.close().catch(() => {});
      await this.triageQueue?.close().catch(() => {});
    }
    for (const c of this.connections) c.disconnect();
  }
}
