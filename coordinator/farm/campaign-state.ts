/**
 * A campaign's live state in Redis: what a coordinator needs to resume after
 * a restart (the files under the data directory hold the rest).
 *
 * Keys (<c> = <ns>:campaign:<id>):
 *   <ns>:campaigns              zset: campaign id -> created (ms)
 *   <c>:meta                    hash: id, seed, targets (JSON), budget (JSON {durationMs?, cases?}),
 *                               status (running | finished), createdAt, finishedAt,
 *                               elapsedMs (running time so far, over all runs), coordinator, generator
 *   <c>:lease                   string: the id of the coordinator running the campaign, expires
 *                               LEASE_MS after its last renewal (one coordinator per campaign)
 *   <c>:cursor                  hash: target -> next case index of its stream
 *   <c>:inflight                hash: exec job id -> JSON InflightEntry: queued, result not yet counted
 *   <c>:counts:<enc target>     hash: queued executed pass divergence crash hang unsupported
 *                               infraError refused failed cancelled lost targetMs wallMs batches rate
 *   <c>:scenarios:<enc target>  hash: S1..S5 | none -> cases executed
 *   <c>:sigs                    set: signature ids of this campaign's findings
 *   <c>:history                 list: JSON HistorySample, oldest first, one per HISTORY_EVERY_MS of
 *                               running time, the newest HISTORY_MAX kept (the dashboard's charts)
 * Shared by the campaigns of a namespace:
 *   <ns>:corpus                 zset: corpus hash (64 hex, corpus/store) -> time added (ms); the
 *                               case files are in <data dir>/corpus
 *   <ns>:corpus-keys            set: the keep keys seen (corpus/store/policy.ts keepKeys: new
 *                               signatures and outcome classes); a case showing an unseen key is kept
 *
 * Readers (the dashboard, coordinator/dashboard/read-model.ts) use only the
 * read side, which stays stable: CampaignState.list, CampaignState.load,
 * state.meta, state.counts(target), state.scenarios(target),
 * state.inflight(), state.cursors(), state.history(), and the keys above. They never write.
 *
 * Lua script applyResult (atomic and idempotent: a result is counted once,
 * whatever crashes or repeats around it):
 *   KEYS[1] <c>:inflight  KEYS[2] <c>:counts:<T>  KEYS[3] <c>:scenarios:<T>
 *   ARGV[1] exec job id   ARGV[2] JSON {count field: increment}   ARGV[3] JSON {scenario: increment}
 *   returns 1 when applied, 0 when the job was not in flight (already counted).
 */
import type { Redis } from 'ioredis';
import { encodeTargetName } from '../../worker/farm/protocol.ts';

export const LEASE_MS = 10_000;
/** How often the coordinator appends a history sample, and how many it keeps (24 h at that pace). */
export const HISTORY_EVERY_MS = 10_000;
export const HISTORY_MAX = 8640;

/** Cumulative counts of each target at one moment: what the charts of a campaign are drawn from. */
export interface HistorySample {
  at: number;
  targets: Record<string, { executed: number; divergence: number; crash: number; hang: number }>;
}

export interface CampaignBudget {
  /** Stop generating after this much running time (summed over restarts). */
  durationMs?: number;
  /** Stop generating after this many cases per target. */
  cases?: number;
}

export interface CampaignMeta {
  id: string;
  seed: number;
  targets: string[];
  budget: CampaignBudget;
  status: 'running' | 'finished';
  createdAt: number;
  finishedAt?: number;
  elapsedMs: number;
  coordinator: string;
  generator: string;
}

export interface InflightEntry {
  target: string;
  from: number;
  to: number;
}

export const COUNT_FIELDS = [
  'queued', 'executed', 'pass', 'divergence', 'crash', 'hang', 'unsupported', 'infraError', 'refused', 'failed', 'cancelled', 'lost',
  'targetMs', 'wallMs', 'batches', 'stackReused',
] as const;
export type CountField = (typeof COUNT_FIELDS)[number];
export type Counts = Record<CountField, number> & { rate: number };

export function emptyCounts(): Counts {
  return Object.fromEntries([...COUNT_FIELDS.map((f) => [f, 0]), ['rate', 0]]) as Counts;
}

const APPLY_RESULT = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
for k, v in pairs(cjson.decode(ARGV[2])) do redis.call('HINCRBY', KEYS[2], k, v) end
for k, v in pairs(cjson.decode(ARGV[3])) do redis.call('HINCRBY', KEYS[3], k, v) end
return 1
`;

/** The campaign exists and is finished: nothing to resume. */
export class CampaignFinished extends Error {
  constructor(readonly meta: CampaignMeta) {
    super(`campaign ${meta.id} finished on ${new Date(meta.finishedAt ?? 0).toISOString()}; pick another --campaign-seed to start a new one`);
    this.name = 'CampaignFinished';
  }
}

/** Another coordinator holds the campaign. */
export class CampaignBusy extends Error {
  constructor(id: string, holder: string) {
    super(`campaign ${id} is being run by coordinator ${holder}; stop it first (its lease lapses ${LEASE_MS / 1000} s after it stops)`);
    this.name = 'CampaignBusy';
  }
}

export function campaignIdForSeed(seed: number): string {
  return `seed-${seed}`;
}

function parseMeta(h: Record<string, string>): CampaignMeta | undefined {
  if (!h.id) return undefined;
  return {
    id: h.id,
    seed: Number(h.seed),
    targets: JSON.parse(h.targets ?? '[]') as string[],
    budget: JSON.parse(h.budget ?? '{}') as CampaignBudget,
    status: h.status === 'finished' ? 'finished' : 'running',
    createdAt: Number(h.createdAt),
    ...(h.finishedAt ? { finishedAt: Number(h.finishedAt) } : {}),
    elapsedMs: Number(h.elapsedMs ?? 0),
    coordinator: h.coordinator ?? '',
    generator: h.generator ?? '',
  };
}

function toCounts(h: Record<string, string>): Counts {
  const c = emptyCounts();
  for (const f of COUNT_FIELDS) c[f] = Number(h[f] ?? 0);
  c.rate = Number(h.rate ?? 0);
  return c;
}

export interface OpenSpec {
  /** Resume or start campaign seed-<seed>; without it, resume the latest running campaign or start one with a random seed. */
  seed?: number;
  targets: string[];
  budget: CampaignBudget;
  coordinator: string;
  generator: string;
}

export class CampaignState {
  private readonly c: string;

  private constructor(
    readonly redis: Redis,
    readonly ns: string,
    public meta: CampaignMeta,
  ) {
    this.c = `${ns}:campaign:${meta.id}`;
    if (!(redis as unknown as { applyResult?: unknown }).applyResult) redis.defineCommand('applyResult', { numberOfKeys: 3, lua: APPLY_RESULT });
  }

  static async load(redis: Redis, ns: string, id: string): Promise<CampaignState | undefined> {
    const meta = parseMeta(await redis.hgetall(`${ns}:campaign:${id}:meta`));
    return meta ? new CampaignState(redis, ns, meta) : undefined;
  }

  /** All campaigns of the namespace, newest first. */
  static async list(redis: Redis, ns: string): Promise<CampaignMeta[]> {
    const ids = await redis.zrevrange(`${ns}:campaigns`, 0, -1);
    const out: CampaignMeta[] = [];
    for (const id of ids) {
      const m = parseMeta(await redis.hgetall(`${ns}:campaign:${id}:meta`));
      if (m) out.push(m);
    }
    return out;
  }

  /**
   * Resume a running campaign or start one (see OpenSpec.seed). On resume the
   * targets and budget given now replace the stored ones (an explicit restart
   * may extend a campaign); counts, cursors and running time carry on.
   */
  static async open(redis: Redis, ns: string, spec: OpenSpec): Promise<{ state: CampaignState; resumed: boolean }> {
    let existing: CampaignState | undefined;
    if (spec.seed !== undefined) {
      existing = await CampaignState.load(redis, ns, campaignIdForSeed(spec.seed));
      if (existing?.meta.status === 'finished') throw new CampaignFinished(existing.meta);
    } else {
      const running = (await CampaignState.list(redis, ns)).find((m) => m.status === 'running');
      if (running) existing = await CampaignState.load(redis, ns, running.id);
    }
    if (existing) {
      existing.meta = { ...existing.meta, targets: spec.targets, budget: spec.budget, coordinator: spec.coordinator };
      await redis.hset(`${existing.c}:meta`, {
        targets: JSON.stringify(spec.targets),
        budget: JSON.stringify(spec.budget),
        coordinator: spec.coordinator,
      });
      return { state: existing, resumed: true };
    }
    const seed = spec.seed ?? Math.floor(Math.random() * 0x7fffffff);
    const id = campaignIdForSeed(seed);
    const meta: CampaignMeta = {
      id,
      seed,
      targets: spec.targets,
      budget: spec.budget,
      status: 'running',
      createdAt: Date.now(),
      elapsedMs: 0,
      coordinator: spec.coordinator,
      generator: spec.generator,
    };
    const created = await redis.hsetnx(`${ns}:campaign:${id}:meta`, 'id', id);
    if (!created) return CampaignState.open(redis, ns, { ...spec, seed });
    await redis
      .multi()
      .hset(`${ns}:campaign:${id}:meta`, {
        seed: String(seed),
        targets: JSON.stringify(meta.targets),
        budget: JSON.stringify(meta.budget),
        status: 'running',
        createdAt: String(meta.createdAt),
        elapsedMs: '0',
        coordinator: meta.coordinator,
        generator: meta.generator,
      })
      .zadd(`${ns}:campaigns`, meta.createdAt, id)
      .exec();
    return { state: new CampaignState(redis, ns, meta), resumed: false };
  }

  get id(): string {
    return this.meta.id;
  }

  /** Take the campaign's lease, waiting up to `waitMs` for a previous holder's to lapse. */
  async acquireLease(holder: string, waitMs = LEASE_MS + 2000): Promise<void> {
    const until = Date.now() + waitMs;
    for (;;) {
      const ok = await this.redis.set(`${this.c}:lease`, holder, 'PX', LEASE_MS, 'NX');
      if (ok) return;
      const current = await this.redis.get(`${this.c}:lease`);
      if (current === holder) return;
      if (Date.now() >= until) throw new CampaignBusy(this.id, current ?? '?');
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Renew the lease; false if another coordinator holds it now. */
  async renewLease(holder: string): Promise<boolean> {
    const current = await this.redis.get(`${this.c}:lease`);
    if (current !== null && current !== holder) return false;
    await this.redis.set(`${this.c}:lease`, holder, 'PX', LEASE_MS);
    return true;
  }

  async releaseLease(holder: string): Promise<void> {
    if ((await this.redis.get(`${this.c}:lease`)) === holder) await this.redis.del(`${this.c}:lease`);
  }

  async inflight(): Promise<Map<string, InflightEntry>> {
    const h = await this.redis.hgetall(`${this.c}:inflight`);
    return new Map(Object.entries(h).map(([k, v]) => [k, JSON.parse(v) as InflightEntry]));
  }

  async cursors(): Promise<Map<string, number>> {
    const h = await this.redis.hgetall(`${this.c}:cursor`);
    return new Map(Object.entries(h).map(([k, v]) => [k, Number(v)]));
  }

  countsKey(target: string): string {
    return `${this.c}:counts:${encodeTargetName(target)}`;
  }

  scenariosKey(target: string): string {
    return `${this.c}:scenarios:${encodeTargetName(target)}`;
  }

  /** A batch is queued: in flight, the target's cursor moves to `cursor` (split batches leave it). */
  async recordEnqueued(jobId: string, e: InflightEntry, cursor?: number): Promise<void> {
    const m = this.redis.multi().hset(`${this.c}:inflight`, jobId, JSON.stringify(e)).hincrby(this.countsKey(e.target), 'queued', e.to - e.from);
    if (cursor !== undefined) m.hset(`${this.c}:cursor`, e.target, String(cursor));
    await m.exec();
  }

  /** Count a batch's result once; false when it was counted already. */
  async applyResult(jobId: string, target: string, counts: Partial<Record<CountField, number>>, scenarios: Record<string, number>): Promise<boolean> {
    const r = await (this.redis as unknown as { applyResult(...a: string[]): Promise<number> }).applyResult(
      `${this.c}:inflight`,
      this.countsKey(target),
      this.scenariosKey(target),
      jobId,
      JSON.stringify(counts),
      JSON.stringify(scenarios),
    );
    return r === 1;
  }

  /** A batch replaced by others (a split): atomically. Their cases were counted as queued already. */
  async replaceInflight(oldId: string, next: Array<[string, InflightEntry]>): Promise<void> {
    const m = this.redis.multi().hdel(`${this.c}:inflight`, oldId);
    for (const [id, e] of next) m.hset(`${this.c}:inflight`, id, JSON.stringify(e));
    await m.exec();
  }

  async counts(target: string): Promise<Counts> {
    return toCounts(await this.redis.hgetall(this.countsKey(target)));
  }

  async scenarios(target: string): Promise<Record<string, number>> {
    const h = await this.redis.hgetall(this.scenariosKey(target));
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Number(v)]));
  }

  async saveProgress(elapsedMs: number, rates: Map<string, number>): Promise<void> {
    const m = this.redis.multi().hset(`${this.c}:meta`, 'elapsedMs', String(Math.round(elapsedMs)));
    for (const [t, r] of rates) m.hset(this.countsKey(t), 'rate', r.toFixed(1));
    await m.exec();
    this.meta.elapsedMs = elapsedMs;
  }

  /** Appends a history sample (capped at HISTORY_MAX, oldest dropped). */
  async appendHistory(sample: HistorySample): Promise<void> {
    await this.redis.multi().rpush(`${this.c}:history`, JSON.stringify(sample)).ltrim(`${this.c}:history`, -HISTORY_MAX, -1).exec();
  }

  /** The history samples, oldest first (malformed entries skipped). */
  async history(): Promise<HistorySample[]> {
    const raw = await this.redis.lrange(`${this.c}:history`, 0, -1);
    const out: HistorySample[] = [];
    for (const r of raw) {
      try {
        const v = JSON.parse(r) as HistorySample;
        if (typeof v.at === 'number' && v.targets && typeof v.targets === 'object') out.push(v);
      } catch {
        // a torn or foreign entry: not ours to chart
      }
    }
    return out;
  }

  async finish(elapsedMs: number): Promise<void> {
    const now = Date.now();
    await this.redis.hset(`${this.c}:meta`, { status: 'finished', finishedAt: String(now), elapsedMs: String(Math.round(elapsedMs)) });
    this.meta = { ...this.meta, status: 'finished', finishedAt: now, elapsedMs };
  }
}
