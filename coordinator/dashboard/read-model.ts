/**
 * What the dashboard knows about the farm, read through the farm's and
 * triage's own exported readers and key builders, never written:
 *
 *   campaigns, counts, scenarios   CampaignState (coordinator/farm/campaign-state.ts)
 *   workers and heartbeats         keys.worker / keys.workers (worker/farm/protocol.ts); read
 *                                  here without liveWorkers' pruning, so that a dashboard
 *                                  never writes Redis and can show recently gone workers
 *   queue depths                   BullMQ getJobCounts on exec-<target> and triage
 *   corpus size                    <ns>:corpus (documented in campaign-state.ts)
 *   signatures and report folders  DirSignatureStore(signaturesRoot(dataDir)) (coordinator/triage)
 *
 * Nothing here runs a case or a command: Redis reads and file reads only.
 */
import { promises as fsp } from 'node:fs';
import { join, sep } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { validateCase, type Case } from '../../model/index.ts';
import { type CampaignMeta, CampaignState, type Counts, type HistorySample, emptyCounts } from '../farm/campaign-state.ts';
import { DataDir } from '../farm/data-dir.ts';
import { DirSignatureStore, type SignatureRecord, caseText, isSignatureId, kernelOfTarget, signatureDir, signaturesRoot } from '../triage/index.ts';
import { TRIAGE_QUEUE, WORKER_TTL_MS, decodeTargetName, execQueueName, keys } from '../../worker/farm/protocol.ts';
import type { WorkerInfo } from '../../worker/farm/registry.ts';

/** BullMQ states a depth is reported for. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];
export type QueueCounts = Record<QueueState, number>;

/** Files of a report folder the dashboard serves (nothing else in the folder is reachable). */
export const REPORT_FILES = ['report.md', 'report.json', 'repro.sh', 'repro.c', 'case.json', 'minimized.json', 'console.log', 'kernel.config', 'signature.json'] as const;
export type ReportFile = (typeof REPORT_FILES)[number];

export function isReportFile(name: string): name is ReportFile {
  return (REPORT_FILES as readonly string[]).includes(name);
}

export interface TargetView {
  target: string;
  kernel: string;
  queue: string;
  counts: Counts;
  /** Cases per second as the coordinator last measured it (~10 s window). */
  rate: number;
  scenarios: Record<string, number>;
  depth: QueueCounts;
  /** Live workers serving the target, and their batch slots. */
  workers: number;
  slots: number;
}

export interface CampaignView {
  meta: CampaignMeta;
  targets: TargetView[];
  totals: Counts;
}

export interface WorkerView extends WorkerInfo {
  alive: boolean;
  /** Milliseconds since its last heartbeat. */
  beatAgeMs: number;
}

export interface QueueView {
  name: string;
  /** The target of an exec queue; undefined for triage. */
  target?: string;
  counts: QueueCounts;
}

export interface SignatureRow {
  id: string;
  title: string;
  /** 'wrong-data/garbage', 'kasan', 'hang', ... */
  class: string;
  source: 'kernel' | 'model';
  outcome: string;
  status: string;
  count: number;
  firstSeen: number;
  lastSeen: number;
  kernels: string[];
  targets: string[];
  /** reproduced / runs of the last reproduction, if measured. */
  reproRate?: number;
  reproRuns?: number;
  minimized: boolean;
  files: ReportFile[];
}

export interface SignatureDetail {
  row: SignatureRow;
  record: SignatureRecord;
  reportMarkdown?: string;
  /** report.json as written by triage (outcome, minimize, crossKernel, ...). */
  report?: ReportJson;
  /** The minimized case (or the original when there is none), as text and as JSON. */
  caseText?: string;
  caseJson?: Case;
  caseRole?: 'minimized' | 'original';
  consoleExcerpt?: string;
  consoleLines?: number;
}

/** The parts of triage's report.json the pages show. */
export interface ReportJson {
  outcome?: {
    kind: string;
    title?: string;
    target?: string;
    divergences?: Array<{ op?: number; opKind?: string; thread?: number; object?: string; offset?: number; class: string; dataClass?: string; expected: string; observed: string; message: string; expectedWriters?: number[]; observedWriter?: number }>;
    notes?: string[];
  };
  minimize?: { executions: number; elapsedMs: number; budgetExhausted?: boolean; originalRate?: { runs: number; reproduced: number }; finalRate?: { runs: number; reproduced: number } };
  reproUnsupported?: string;
}

/** One finding file of a campaign (data/divergences/<campaign>/<target>/<case id>.json). */
export interface FindingTime {
  at: number;
  kind: 'divergence' | 'crash' | 'hang';
  target: string;
  /** The worker that ran the case and the signature the coordinator filed it under, when the record says. */
  worker?: string;
  signature?: string;
}

export interface KernelView {
  name: string;
  targets: string[];
  signatures: SignatureRow[];
  executed: number;
  findings: number;
}

export interface Overview {
  namespace: string;
  dataDir: string;
  at: number;
  campaigns: CampaignView[];
  workers: WorkerView[];
  queues: QueueView[];
  corpusSize: number;
  signatures: { total: number; open: number; minimized: number; withRepro: number; byClass: Record<string, number> };
  kernels: string[];
}

export interface ReadModelOptions {
  redis: Redis;
  /** A connection BullMQ's Queue objects may share (not used for blocking commands). */
  queueConnection: Redis;
  namespace: string;
  dataDir: string;
  /** How long a signature listing is reused. @defaultValue 2000 */
  signatureCacheMs?: number;
}

const CONSOLE_EXCERPT_LINES = 200;

function emptyQueueCounts(): QueueCounts {
  return Object.fromEntries(QUEUE_STATES.map((s) => [s, 0])) as QueueCounts;
}

function addCounts(into: Counts, c: Counts): void {
  for (const k of Object.keys(into) as Array<keyof Counts>) into[k] += c[k];
}

function classOf(r: SignatureRecord): string {
  const p = r.parts;
  if (p.source === 'kernel') return p.reportKind ?? p.outcome;
  return p.dataClass ? `${p.class}/${p.dataClass}` : (p.class ?? p.outcome);
}

/**
 * The outcome kind, worker and signature of a finding record. The
 * coordinator writes them before the case, so the head of the file usually
 * says; the whole file is parsed only when it does not.
 */
async function findingHead(path: string): Promise<Omit<FindingTime, 'at' | 'target'> | undefined> {
  const fh = await fsp.open(path, 'r');
  let head: string;
  try {
    const buf = Buffer.alloc(8192);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
  const field = (name: string) => new RegExp(`^  "${name}": "([^"\\\\]{1,200})"`, 'm').exec(head)?.[1];
  const m = /"outcome":\s*\{\s*"kind":\s*"([a-z-]+)"/.exec(head);
  let kind = m?.[1];
  let worker = field('worker');
  let signature = field('signature');
  if (!m) {
    const r = JSON.parse(await fsp.readFile(path, 'utf8')) as { outcome?: { kind?: string }; worker?: unknown; signature?: unknown };
    kind = r.outcome?.kind;
    worker = typeof r.worker === 'string' ? r.worker : undefined;
    signature = typeof r.signature === 'string' ? r.signature : undefined;
  }
  if (kind !== 'divergence' && kind !== 'crash' && kind !== 'hang') return undefined;
  return { kind, ...(worker ? { worker } : {}), ...(signature ? { signature } : {}) };
}

export class FarmReadModel {
  readonly ns: string;
  readonly data: DataDir;
  readonly store: DirSignatureStore;
  private readonly redis: Redis;
  private readonly queueConnection: Redis;
  private readonly queues = new Map<string, Queue>();
  private readonly signatureCacheMs: number;
  private signatureCache: { at: number; rows: Promise<SignatureRow[]> } | undefined;
  /** Finding files read once (they are written once, atomically): path -> its time and kind. */
  private readonly findingFiles = new Map<string, FindingTime | null>();

  constructor(opts: ReadModelOptions) {
    this.redis = opts.redis;
    this.queueConnection = opts.queueConnection;
    this.ns = opts.namespace;
    this.data = new DataDir(opts.dataDir);
    this.store = new DirSignatureStore(signaturesRoot(this.data.root));
    this.signatureCacheMs = opts.signatureCacheMs ?? 2000;
  }

  // ---------------------------------------------------------------- queues

  /** The BullMQ queue object for a name (created once, used for reads only). */
  queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.queueConnection, prefix: this.ns });
      q.on('error', () => {});
      this.queues.set(name, q);
    }
    return q;
  }

  /**
   * The farm's queues: the exec queues of the campaigns' targets and every
   * exec-* and triage* queue that exists in Redis (BullMQ's <ns>:<queue>:meta:
   * workers may serve targets no campaign names, and triage may add queues
   * of its own), exec queues first.
   */
  async queueNames(campaigns?: CampaignMeta[]): Promise<string[]> {
    const names = new Set<string>([TRIAGE_QUEUE]);
    for (const m of campaigns ?? (await this.campaignMetas())) for (const t of m.targets) names.add(execQueueName(t));
    for (const pattern of [`${this.ns}:exec-*:meta`, `${this.ns}:${TRIAGE_QUEUE}*:meta`]) {
      let cursor = '0';
      do {
        const [next, found] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 200);
        cursor = next;
        for (const k of found) {
          const name = k.slice(this.ns.length + 1, -':meta'.length);
          if (/^[A-Za-z0-9_.-]+$/.test(name)) names.add(name);
        }
      } while (cursor !== '0');
    }
    const exec = [...names].filter((n) => n.startsWith('exec-')).sort();
    return [...exec, ...[...names].filter((n) => !n.startsWith('exec-')).sort()];
  }

  async queueCounts(name: string): Promise<QueueCounts> {
    const c = await this.queue(name).getJobCounts(...QUEUE_STATES);
    return { ...emptyQueueCounts(), ...c } as QueueCounts;
  }

  async queueViews(names: string[]): Promise<QueueView[]> {
    const out: QueueView[] = [];
    for (const name of names) {
      const target = name.startsWith('exec-') ? targetOfQueue(name) : undefined;
      out.push({ name, ...(target ? { target } : {}), counts: await this.queueCounts(name) });
    }
    return out;
  }

  // ---------------------------------------------------------------- campaigns, workers, corpus

  campaignMetas(): Promise<CampaignMeta[]> {
    return CampaignState.list(this.redis, this.ns);
  }

  async campaign(meta: CampaignMeta, workers: WorkerView[]): Promise<CampaignView> {
    const state = await CampaignState.load(this.redis, this.ns, meta.id);
    const totals = emptyCounts();
    const targets: TargetView[] = [];
    for (const target of meta.targets) {
      const counts = state ? await state.counts(target) : emptyCounts();
      const serving = workers.filter((w) => w.alive && w.targets.includes(target));
      targets.push({
        target,
        kernel: kernelOfTarget(target),
        queue: execQueueName(target),
        counts,
        rate: meta.status === 'running' ? counts.rate : 0,
        scenarios: state ? await state.scenarios(target) : {},
        depth: await this.queueCounts(execQueueName(target)),
        workers: serving.length,
        slots: serving.reduce((n, w) => n + w.concurrency, 0),
      });
      addCounts(totals, counts);
    }
    totals.rate = targets.reduce((n, t) => n + t.rate, 0);
    return { meta, targets, totals };
  }

  /** The coordinator's stored count history of a campaign, oldest first (empty when there is none). */
  async storedHistory(id: string): Promise<HistorySample[]> {
    const state = await CampaignState.load(this.redis, this.ns, id);
    return state ? state.history() : [];
  }

  /** Workers in the registry: live ones, and gone ones whose last beat is still listed. Newest beat first. */
  async workers(now = Date.now()): Promise<WorkerView[]> {
    const entries = await this.redis.zrevrange(keys.workers(this.ns), 0, 499, 'WITHSCORES');
    const out: WorkerView[] = [];
    const ids: Array<[string, number]> = [];
    for (let i = 0; i < entries.length; i += 2) ids.push([entries[i]!, Number(entries[i + 1])]);
    if (!ids.length) return out;
    const pipe = this.redis.pipeline();
    for (const [id] of ids) pipe.hgetall(keys.worker(this.ns, id));
    const rows = (await pipe.exec()) ?? [];
    ids.forEach(([id, beat], i) => {
      const h = (rows[i]?.[1] ?? {}) as Record<string, string>;
      const alive = Boolean(h.id);
      const beatAt = alive ? Number(h.beatAt) : beat;
      out.push({
        id,
        host: h.host ?? '',
        pid: Number(h.pid ?? 0),
        targets: alive ? (JSON.parse(h.targets ?? '[]') as string[]) : [],
        concurrency: Number(h.concurrency ?? 0),
        startedAt: Number(h.startedAt ?? 0),
        beatAt,
        version: Number(h.version ?? 0),
        alive: alive && now - beatAt < WORKER_TTL_MS,
        beatAgeMs: Math.max(0, now - beatAt),
      });
    });
    return out;
  }

  async corpusSize(): Promise<number> {
    return this.redis.zcard(`${this.ns}:corpus`);
  }

  /**
   * When each finding of a campaign was filed, from its file in the data
   * directory (so the chart covers the whole campaign, not only the time
   * this dashboard has been up). Files of cases that failed their batch
   * (<case id>.failed.json) are not findings. At most `max` files are read.
   */
  async findingTimes(campaign: string, max = 20_000): Promise<FindingTime[]> {
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(campaign) || campaign.startsWith('.')) return [];
    const root = join(this.data.root, 'divergences', campaign);
    const out: FindingTime[] = [];
    let targets: string[];
    try {
      targets = await fsp.readdir(root);
    } catch {
      return out;
    }
    for (const enc of targets.sort()) {
      let names: string[];
      try {
        names = await fsp.readdir(join(root, enc));
      } catch {
        continue;
      }
      for (const n of names) {
        if (out.length >= max) return out;
        if (!/^[0-9a-f]{16}\.json$/.test(n)) continue;
        const p = join(root, enc, n);
        let f = this.findingFiles.get(p);
        if (f === undefined) {
          f = null;
          try {
            const head = await findingHead(p);
            const st = await fsp.stat(p);
            if (head) f = { at: st.mtimeMs, target: decodeTargetName(enc), ...head };
          } catch {
            // being swept by retention, or not a finding record: not counted
          }
          this.findingFiles.set(p, f);
        }
        if (f) out.push(f);
      }
    }
    return out.sort((a, b) => a.at - b.at);
  }

  /** The findings a worker reported, in the newest `campaigns` campaigns, newest first (at most `max`). */
  async findingsOfWorker(id: string, campaigns = 5, max = 200): Promise<Array<FindingTime & { campaign: string }>> {
    const out: Array<FindingTime & { campaign: string }> = [];
    for (const m of (await this.campaignMetas()).slice(0, campaigns))
      for (const f of await this.findingTimes(m.id)) if (f.worker === id) out.push({ ...f, campaign: m.id });
    return out.sort((a, b) => b.at - a.at).slice(0, max);
  }

  // ---------------------------------------------------------------- signatures

  private async rowOf(r: SignatureRecord): Promise<SignatureRow> {
    const dir = signatureDir(this.store.root, r.id);
    const present = new Set(await fsp.readdir(dir).catch(() => [] as string[]));
    const files = REPORT_FILES.filter((f) => present.has(f));
    const rep = r.reproduction;
    return {
      id: r.id,
      title: r.title,
      class: classOf(r),
      source: r.parts.source,
      outcome: r.parts.outcome,
      status: r.status,
      count: r.count,
      firstSeen: r.firstSeen,
      lastSeen: r.lastSeen,
      kernels: Object.keys(r.kernels).sort(),
      targets: Object.keys(r.targets).sort(),
      ...(rep ? { reproRate: rep.rate, reproRuns: rep.runs } : {}),
      minimized: files.includes('minimized.json'),
      files,
    };
  }

  /** Every signature, most recently seen first (cached for a moment: pages poll). */
  signatures(): Promise<SignatureRow[]> {
    const now = Date.now();
    if (!this.signatureCache || now - this.signatureCache.at > this.signatureCacheMs) {
      const rows = (async () => Promise.all((await this.store.list()).map((r) => this.rowOf(r))))();
      rows.catch(() => {
        this.signatureCache = undefined;
      });
      this.signatureCache = { at: now, rows };
    }
    return this.signatureCache.rows;
  }

  /**
   * The folder of a signature, or undefined for anything that is not a
   * signature id (the id check and the containment check of signatureDir:
   * no dots, no slashes, the resolved path stays under <data>/reports).
   */
  reportDir(id: string): string | undefined {
    if (!isSignatureId(id)) return undefined;
    try {
      return signatureDir(this.store.root, id);
    } catch {
      return undefined;
    }
  }

  async signature(id: string): Promise<SignatureDetail | undefined> {
    const dir = this.reportDir(id);
    if (!dir) return undefined;
    const record = await this.store.get(id);
    if (!record) return undefined;
    const row = await this.rowOf(record);
    const rdir = signatureDir(this.store.root, record.id);
    const read = (f: ReportFile) => fsp.readFile(join(rdir, f), 'utf8').catch(() => undefined);
    const detail: SignatureDetail = { row, record };
    const md = await read('report.md');
    if (md !== undefined) detail.reportMarkdown = md;
    const rj = await read('report.json');
    if (rj !== undefined) {
      try {
        detail.report = JSON.parse(rj) as ReportJson;
      } catch {
        // half-written by an older writer: shown without it
      }
    }
    const minimized = await this.store.getCase(record.id, 'minimized');
    const theCase = minimized ?? (await this.store.getCase(record.id, 'original'));
    if (theCase) {
      detail.caseJson = theCase;
      detail.caseRole = minimized ? 'minimized' : 'original';
      const v = validateCase(theCase);
      if (v.ok) detail.caseText = caseText(v.value);
    }
    const log = await read('console.log');
    if (log !== undefined) {
      const lines = log.split('\n');
      detail.consoleLines = lines.length;
      detail.consoleExcerpt = lines.slice(0, CONSOLE_EXCERPT_LINES).join('\n');
    }
    return detail;
  }

  /** The path of a served report file, or undefined (unknown signature, a name not in REPORT_FILES, no such file). */
  async reportFile(id: string, name: string): Promise<string | undefined> {
    if (!isReportFile(name)) return undefined;
    const dir = this.reportDir(id);
    if (!dir) return undefined;
    const record = await this.store.get(id);
    if (!record) return undefined;
    const p = join(signatureDir(this.store.root, record.id), name);
    // A link in a report folder must not lead out of the data directory: the real path must stay inside it.
    const [real, root] = await Promise.all([fsp.realpath(p).catch(() => undefined), fsp.realpath(this.data.root).catch(() => undefined)]);
    if (!real || !root || !real.startsWith(root + sep)) return undefined;
    return (await fsp.stat(real)).isFile() ? real : undefined;
  }

  // ---------------------------------------------------------------- kernels and the overview

  async kernel(name: string, campaigns: CampaignView[]): Promise<KernelView | undefined> {
    const rows = await this.signatures();
    const targets = new Set<string>();
    let executed = 0;
    let findings = 0;
    for (const c of campaigns)
      for (const t of c.targets)
        if (t.kernel === name) {
          targets.add(t.target);
          executed += t.counts.executed;
          findings += t.counts.divergence + t.counts.crash + t.counts.hang;
        }
    const signatures = rows.filter((r) => r.kernels.includes(name));
    if (!targets.size && !signatures.length) return undefined;
    for (const s of signatures) for (const t of s.targets) if (kernelOfTarget(t) === name) targets.add(t);
    return { name, targets: [...targets].sort(), signatures, executed, findings };
  }

  async overview(): Promise<Overview> {
    const at = Date.now();
    const metas = await this.campaignMetas();
    const workers = await this.workers(at);
    const campaigns: CampaignView[] = [];
    for (const m of metas) campaigns.push(await this.campaign(m, workers));
    const queues = await this.queueViews(await this.queueNames(metas));
    const rows = await this.signatures();
    const byClass: Record<string, number> = {};
    for (const r of rows) byClass[r.class] = (byClass[r.class] ?? 0) + 1;
    const kernels = new Set<string>();
    for (const c of campaigns) for (const t of c.targets) kernels.add(t.kernel);
    for (const r of rows) for (const k of r.kernels) kernels.add(k);
    return {
      namespace: this.ns,
      dataDir: this.data.root,
      at,
      campaigns,
      workers,
      queues,
      corpusSize: await this.corpusSize(),
      signatures: {
        total: rows.length,
        open: rows.filter((r) => r.status === 'new' || r.status === 'reported').length,
        minimized: rows.filter((r) => r.minimized).length,
        withRepro: rows.filter((r) => r.files.includes('repro.c')).length,
        byClass,
      },
      kernels: [...kernels].sort(),
    };
  }

  async close(): Promise<void> {
    for (const q of this.queues.values()) await q.close().catch(() => {});
    this.queues.clear();
  }
}

/** exec-<encoded target> -> the target name. */
export function targetOfQueue(queue: string): string {
  return decodeTargetName(queue.slice('exec-'.length));
}
